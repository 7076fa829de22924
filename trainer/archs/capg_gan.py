"""CAPG-GAN (Hu et al., CVPR 2018, "Pose-Guided Photorealistic Face Rotation"), for 64 px
grey faces.

The generator reads the face and two stacks of landmark heatmaps, one Gaussian per point:
the face's own points (the source pose) and the points of the pose to render (the target).
It is an encoder-decoder with skip connections and residual blocks at the bottleneck (the
paper's generator is a U-Net-like encoder-decoder; its widths are for 128 px colour faces).
Served, the target is always the frontal pose: the mean points of the aligned frontal
training chips, a buffer (``frontal_points``) the recipe sets before training, so the
exported network takes ``(image, points)`` only.

The couple-agent discriminators are pix2pix's PatchGANs over channel stacks the recipe builds:
the identity agent judges (input face, frontal face) pairs, the pose agent (target heatmaps,
frontal face) pairs.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.pix2pix import NLayerDiscriminator
from trainer.archs.tpgan import SkipEncoderDecoder

NUM_POINTS = 68


def render_heatmaps(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(N, K, size, size) Gaussians of (N, K, 2) points given relative to the square (x, y in
    [0, 1], pixel i covering [i, i + 1) / size), ``sigma`` in pixels, peak 1."""
    centres = (torch.arange(size, dtype=points.dtype, device=points.device) + 0.5) / size
    dx = centres.view(1, 1, 1, size) - points[..., 0, None, None]
    dy = centres.view(1, 1, size, 1) - points[..., 1, None, None]
    scale = (size / sigma) ** 2 / 2
    return torch.exp(-(dx * dx + dy * dy) * scale)


class CAPGGenerator(nn.Module):
    """(face, source points[, target points]) → the face at the target pose (see the module
    docstring). Images (N, channels, size, size) in [-1, 1]; points (N, 68, 2) relative.

    The body is TP-GAN's global pathway (:class:`~trainer.archs.tpgan.SkipEncoderDecoder`:
    three halvings, residual blocks at the bottom, skip connections) on the face and both
    heatmap stacks, with instance norm; a 3x3 conv and tanh make the image.
    """

    frontal_points: torch.Tensor

    def __init__(
        self,
        *,
        channels: int = 1,
        size: int = 64,
        base: int = 32,
        blocks: int = 2,
        sigma: float = 1.5,
        num_points: int = NUM_POINTS,
    ) -> None:
        super().__init__()
        self.size, self.sigma = size, sigma
        # Set by the recipe to the frontal training chips' mean points before training.
        self.register_buffer("frontal_points", torch.full((num_points, 2), 0.5))
        widths = [base, 2 * base, 4 * base, 8 * base]
        self.body = SkipEncoderDecoder(channels + 2 * num_points, widths, blocks, "instance")
        self.head = nn.Sequential(nn.Conv2d(base, channels, 3, 1, 1), nn.Tanh())

    def forward(
        self, image: torch.Tensor, points: torch.Tensor, target_points: torch.Tensor | None = None
    ) -> torch.Tensor:
        target = self.frontal_points.expand_as(points) if target_points is None else target_points
        heatmaps = render_heatmaps(torch.cat([points, target], dim=1), self.size, self.sigma)
        out: torch.Tensor = self.head(self.body(torch.cat([image, heatmaps.to(image.dtype)], 1)))
        return out


@ARCHS.register("capg_generator")
def capg_generator() -> CAPGGenerator:
    """64 px grey faces, width 32 (3.4M parameters)."""
    return CAPGGenerator()


@ARCHS.register("capg_generator_tiny")
def capg_generator_tiny() -> CAPGGenerator:
    """Width 8, one residual block: for tests."""
    return CAPGGenerator(base=8, blocks=1)


@ARCHS.register("capg_discriminator")
def capg_discriminator(in_channels: int) -> NLayerDiscriminator:
    """A couple agent (the recipe passes its stack's channel count): pix2pix's PatchGAN,
    width 32, instance norm; (N, 1, 6, 6) logits at 64 px."""
    return NLayerDiscriminator(in_channels, ndf=32, n_layers=3, norm="instance")


@ARCHS.register("capg_discriminator_tiny")
def capg_discriminator_tiny(in_channels: int) -> NLayerDiscriminator:
    """Width 8: for tests."""
    return NLayerDiscriminator(in_channels, ndf=8, n_layers=3, norm="instance")
