"""CAPG-GAN (Hu et al., CVPR 2018, "Pose-Guided Photorealistic Face Rotation"), for 64 px
grey faces.

The generator reads the face and two stacks of landmark heatmaps, one Gaussian per point:
the face's own points (the source pose) and the points of the pose to render (the target).
It is an encoder-decoder with skip connections and residual blocks at the bottleneck (the
paper's generator is a U-Net-like encoder-decoder; its widths are for 128 px colour faces).
Served, the target is always the frontal pose: the mean points of the aligned frontal
training chips, a buffer (``frontal_points``) the recipe sets before training, so the
exported network takes ``(image, points)`` only.

The couple-agent discriminators are plain PatchGANs over channel stacks built by the recipe:
the identity agent judges (input face, frontal face) pairs, the pose agent (target heatmaps,
frontal face) pairs.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS

NUM_POINTS = 68


def render_heatmaps(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(N, K, size, size) Gaussians of (N, K, 2) points given relative to the square (x, y in
    [0, 1], pixel i covering [i, i + 1) / size), ``sigma`` in pixels, peak 1."""
    centres = (torch.arange(size, dtype=points.dtype, device=points.device) + 0.5) / size
    dx = centres.view(1, 1, 1, size) - points[..., 0, None, None]
    dy = centres.view(1, 1, size, 1) - points[..., 1, None, None]
    scale = (size / sigma) ** 2 / 2
    return torch.exp(-(dx * dx + dy * dy) * scale)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2 if stride == 1 else 1),
        nn.InstanceNorm2d(cout, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Up(nn.Module):
    """Nearest 2x upsampling, a 3x3 conv, then the skip's features concatenated."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = _conv(cin, cout, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(self.up(x)), skip], dim=1)


class CAPGGenerator(nn.Module):
    """(face, source points[, target points]) → the face at the target pose (see the module
    docstring). Images (N, channels, size, size) in [-1, 1]; points (N, 68, 2) relative."""

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
        self.stem = _conv(channels + 2 * num_points, base, 3)
        self.down1 = _conv(base, base * 2, 4, 2)
        self.down2 = _conv(base * 2, base * 4, 4, 2)
        self.down3 = _conv(base * 4, base * 8, 4, 2)
        self.blocks = nn.Sequential(*(ResidualBlock(base * 8) for _ in range(blocks)))
        self.up3 = Up(base * 8, base * 4)
        self.up2 = Up(base * 8, base * 2)
        self.up1 = Up(base * 4, base)
        self.head = nn.Sequential(
            _conv(base * 2, base, 3), nn.Conv2d(base, channels, 3, 1, 1), nn.Tanh()
        )

    def forward(
        self, image: torch.Tensor, points: torch.Tensor, target_points: torch.Tensor | None = None
    ) -> torch.Tensor:
        frontal: torch.Tensor = self.frontal_points
        target = frontal.expand_as(points) if target_points is None else target_points
        heatmaps = render_heatmaps(torch.cat([points, target], dim=1), self.size, self.sigma)
        x0 = self.stem(torch.cat([image, heatmaps.to(image.dtype)], dim=1))
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        x = self.blocks(self.down3(x2))
        x = self.up1(self.up2(self.up3(x, x2), x1), x0)
        out: torch.Tensor = self.head(x)
        return out


class PatchDiscriminator(nn.Module):
    """A 34x34-receptive-field PatchGAN (three stride-2 4x4 convs, then a 1-channel one) on a
    stack of channels: (N, in_channels, S, S) → (N, 1, S/8 - 1, S/8 - 1) logits."""

    def __init__(self, in_channels: int, base: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, base, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base, base * 2, 4, 2, 1),
            nn.InstanceNorm2d(base * 2, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 2, base * 4, 4, 2, 1),
            nn.InstanceNorm2d(base * 4, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 4, 1, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


@ARCHS.register("capg_generator")
def capg_generator() -> CAPGGenerator:
    """64 px grey faces, width 32 (2.5M parameters)."""
    return CAPGGenerator()


@ARCHS.register("capg_generator_tiny")
def capg_generator_tiny() -> CAPGGenerator:
    """Width 8, one residual block: for tests."""
    return CAPGGenerator(base=8, blocks=1)


@ARCHS.register("capg_discriminator")
def capg_discriminator(in_channels: int) -> PatchDiscriminator:
    """A couple agent (the recipe passes its stack's channel count), width 64."""
    return PatchDiscriminator(in_channels)


@ARCHS.register("capg_discriminator_tiny")
def capg_discriminator_tiny(in_channels: int) -> PatchDiscriminator:
    """Width 8: for tests."""
    return PatchDiscriminator(in_channels, base=8)
