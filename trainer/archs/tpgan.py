"""TP-GAN (Huang, Zhang, Li and He, ICCV 2017, "Beyond Face Rotation: Global and Local
Perception GAN for Photorealistic and Identity Preserving Frontal View Synthesis"): a
two-pathway generator that turns a non-frontal face into its frontal view, scaled from the
paper's 128 px colour faces to 64 px grey ones.

**Contract.** ``TPGANGenerator(image, points)`` takes ``image`` (N, C, S, S) in [-1, 1], a square
crop of the face, and ``points`` (N, 68, 2), that face's iBUG-68 landmarks as (x, y) relative
to the crop: 0 is the left / top edge and 1 the right / bottom edge, pixel i covers
[i, i + 1) / S. It returns the frontal view (N, C, S, S) in [-1, 1] (tanh). S is fixed per
network (``size``): the frontal part positions are pasted at integer offsets computed once.

**Layout** (the paper's Fig. 2, widths scaled down):

* Four *local pathways* (left eye, right eye, nose, mouth; left and right as seen in the
  image): each cuts a patch of :func:`patch_sizes` from the *input* around that part's centre
  (:func:`part_centres`), with ``F.grid_sample`` on a translated pixel grid (bilinear, zeros
  outside the crop), and runs a small encoder-decoder on it. Each gives a feature map and its
  own frontal patch (tanh), which the training recipe compares with the true frontal's patch
  (:func:`frontal_patches`).
* The pathways' features and patches are pasted into full-size canvases at the *fixed*
  frontal positions :data:`FRONTAL_CENTRES` and fused by an element-wise max, as the paper
  does (features are ReLU'd and padded with 0, patches padded with -1, so the max over the
  four canvases is the covering pathway's value wherever only one covers a pixel).
* A *global pathway*: an encoder-decoder with skip connections on the whole crop (S → S/8 at
  the bottleneck, residual blocks there). The paper also feeds it a noise vector; it is left
  out here, so the network is a deterministic function, as serving needs.
* The fusion: the global pathway's full-resolution features, the fused local features and the
  fused local patch image, concatenated, then three 3x3 convs and tanh.

Cutting uses plain arithmetic on a base grid (no ``F.affine_grid``) and pasting ``F.pad`` at
static offsets, so the network exports to ONNX opset 17 (``GridSample``) with a dynamic batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce
from typing import NamedTuple, TypedDict

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.pix2pix import LRELU_SLOPE, NLayerDiscriminator, Norm, conv_bias, norm_layer

PARTS = ("left_eye", "right_eye", "nose", "mouth")
NUM_POINTS = 68
# The iBUG-68 points whose mean is each part's centre. The nose is its nine points (bridge
# 27-30 and base 31-35) rather than the tip alone: nine points are steadier than one, and their
# mean sits in the middle of the nose's height, which the patch should cover.
PART_POINTS: dict[str, range] = {
    "left_eye": range(36, 42),
    "right_eye": range(42, 48),
    "nose": range(27, 36),
    "mouth": range(48, 68),
}
# Where each part's centre lies in the frontal output, (x, y) as fractions of the crop. The
# recipe aligns the true frontal faces so that their part_centres() land here. The nose is
# the 300-W median of PART_POINTS["nose"] once each face's eye and mouth centres are aligned
# to these (0.570; the tip, point 30, lands at 0.581); the chin then lands near the bottom edge.
FRONTAL_CENTRES: dict[str, tuple[float, float]] = {
    "left_eye": (0.34, 0.40),
    "right_eye": (0.66, 0.40),
    "nose": (0.50, 0.57),
    "mouth": (0.50, 0.76),
}
# Patch (height, width) in pixels at REFERENCE_SIZE: half the paper's 128 px ones (eyes 40x40,
# nose 40x32, mouth 32x48, h x w). patch_sizes() scales them to other sizes.
REFERENCE_SIZE = 64
PATCH_SIZES: dict[str, tuple[int, int]] = {
    "left_eye": (20, 20),
    "right_eye": (20, 20),
    "nose": (20, 16),
    "mouth": (16, 24),
}
GLOBAL_LEVELS = 3  # S → S/8 at the global bottleneck
LOCAL_LEVELS = 2  # each patch → patch/4
SIZE_MULTIPLE = 2**GLOBAL_LEVELS
BASE = 32


class Box(NamedTuple):
    """A patch's place in the crop, in pixels: rows top .. top + height - 1, columns left ..
    left + width - 1."""

    top: int
    left: int
    height: int
    width: int


class TPGANParts(TypedDict):
    """What :meth:`TPGANGenerator.forward_parts` returns.

    ``image``: the frontal view (N, C, S, S), as ``forward``. ``patches``: the four local
    pathways' frontal patches in :data:`PARTS` order, each (N, C, h, w) of :func:`patch_sizes`.
    ``centres``: (N, 4, 2) the part centres the input patches were cut around (x, y relative).
    """

    image: torch.Tensor
    patches: tuple[torch.Tensor, ...]
    centres: torch.Tensor


def patch_sizes(size: int) -> dict[str, tuple[int, int]]:
    """Each part's patch (height, width) for a ``size`` crop: :data:`PATCH_SIZES` scaled by
    ``size / 64`` and rounded to a multiple of 4 (the local pathways halve twice)."""
    multiple = 2**LOCAL_LEVELS

    def scaled(n: int) -> int:
        return max(multiple, multiple * math.floor(n * size / REFERENCE_SIZE / multiple + 0.5))

    return {part: (scaled(h), scaled(w)) for part, (h, w) in PATCH_SIZES.items()}


def frontal_boxes(size: int) -> dict[str, Box]:
    """Each part's box in a ``size`` frontal crop: its :func:`patch_sizes` patch centred on
    :data:`FRONTAL_CENTRES`, rounded to whole pixels (so within half a pixel of the centre)."""
    boxes = {}
    for part, (height, width) in patch_sizes(size).items():
        x, y = FRONTAL_CENTRES[part]
        top = math.floor(y * size - height / 2 + 0.5)
        left = math.floor(x * size - width / 2 + 0.5)
        if top < 0 or left < 0 or top + height > size or left + width > size:
            raise ValueError(f"the {part} patch does not fit a {size} px crop")
        boxes[part] = Box(top, left, height, width)
    return boxes


def frontal_patches(image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four parts' patches of a (true) frontal ``image`` (N, C, S, S), cut at
    :func:`frontal_boxes`, in :data:`PARTS` order: what the local pathways' patches are
    compared with."""
    boxes = frontal_boxes(image.shape[-1])
    return tuple(
        image[..., b.top : b.top + b.height, b.left : b.left + b.width]
        for b in (boxes[part] for part in PARTS)
    )


def part_centres(points: torch.Tensor) -> torch.Tensor:
    """(N, 4, 2) the :data:`PARTS` centres, (x, y) relative, of (N, 68, 2) iBUG-68 points:
    the mean of each part's :data:`PART_POINTS`."""
    return torch.stack(
        [points[:, r.start : r.stop].mean(dim=1) for r in PART_POINTS.values()], dim=1
    )


def cut_patch(image: torch.Tensor, centre: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The (N, C, height, width) patch of ``image`` (N, C, H, W) centred on ``centre`` (N, 2),
    (x, y) relative to the crop; bilinear, zeros outside the crop.

    Patch pixel (i, j) samples the crop at pixel coordinates ``(cx * W + j + 0.5 - width / 2,
    cy * H + i + 0.5 - height / 2)`` (pixel centres at k + 0.5), so a centre on a pixel corner
    with an even side cuts whole pixels exactly. The grid is a constant base grid plus the
    centre's offset (no ``F.affine_grid``), so the export is one ``GridSample``.
    """
    h, w = image.shape[-2:]
    # grid_sample's align_corners=False coordinates: -1 and 1 are the crop's outer edges, so
    # relative position p is 2p - 1 and one pixel is 2 / W.
    xs = (2 * torch.arange(width, dtype=image.dtype, device=image.device) + 1 - width) / w
    ys = (2 * torch.arange(height, dtype=image.dtype, device=image.device) + 1 - height) / h
    base = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=-1)
    grid = base[None] + (2 * centre - 1)[:, None, None, :]
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _conv(
    in_channels: int, out_channels: int, norm: Norm, *, stride: int = 1, kernel: int = 3
) -> nn.Sequential:
    """conv → norm → LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=conv_bias(norm)),
        norm_layer(norm, out_channels),
        nn.LeakyReLU(LRELU_SLOPE, inplace=True),
    )


class ResidualBlock(nn.Module):
    """``x + conv(norm(lrelu(conv(x))))``: two 3x3 convs at one width."""

    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, norm),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=conv_bias(norm)),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SkipEncoderDecoder(nn.Module):
    """A U-Net-like pathway: ``widths[0]`` at full resolution, then one stride-2 conv per further
    width, residual blocks at the bottom, and back up (nearest upsampling, concatenation with
    the encoder's map at that level, a 3x3 conv to that level's width).

    Args:
        in_channels: input channels.
        widths: channels per level, full resolution first; ``len(widths) - 1`` halvings.
        residual_blocks: blocks at the bottleneck.
        norm: ``"batch"`` or ``"instance"``.
        first_kernel: the full-resolution input conv's kernel (no norm after it).

    ``forward`` returns the (N, widths[0], H, W) decoder features; H and W must be multiples
    of ``2 ** (len(widths) - 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        residual_blocks: int,
        norm: Norm,
        first_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], first_kernel, 1, first_kernel // 2),
            nn.LeakyReLU(LRELU_SLOPE, inplace=True),
        )
        self.down = nn.ModuleList(
            _conv(widths[i], widths[i + 1], norm, stride=2) for i in range(len(widths) - 1)
        )
        self.bottleneck = nn.Sequential(
            *(ResidualBlock(widths[-1], norm) for _ in range(residual_blocks))
        )
        # Level i's decoder reads the upsampled map from below (widths[i + 1] channels, the
        # bottleneck's width at the bottom) and the encoder's level-i map.
        self.up = nn.ModuleList(
            _conv(widths[i + 1] + widths[i], widths[i], norm) for i in range(len(widths) - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = self.bottleneck(skips.pop())
        for up in reversed(self.up):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = up(torch.cat([h, skips.pop()], dim=1))
        return h


class LocalPathway(nn.Module):
    """One part's encoder-decoder: (N, C, h, w) input patch → (non-negative features
    (N, width, h, w), the frontal patch (N, C, h, w) in [-1, 1])."""

    def __init__(self, channels: int, width: int, norm: Norm) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(LOCAL_LEVELS + 1)]
        self.body = SkipEncoderDecoder(channels, widths, residual_blocks=1, norm=norm)
        self.to_patch = nn.Conv2d(width, channels, 3, 1, 1)

    def forward(self, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # ReLU'd so that the zero padding around the pasted map never wins the fusing max.
        features = F.relu(self.body(patch))
        return features, torch.tanh(self.to_patch(features))


class TPGANGenerator(nn.Module):
    """TP-GAN's generator: four landmark-located local pathways and a global pathway (see the
    module docstring for the contract and the layout).

    Args:
        channels: image channels (1: grey).
        size: the crop side S; a multiple of 8 (the global pathway halves three times).
        base: the global pathway's full-resolution width (then 2x, 4x, 4x at the bottleneck);
            also the fusion convs' width.
        local_base: each local pathway's full-resolution width (then 2x, 4x); default base / 2.
        residual_blocks: residual blocks at the global bottleneck.
        norm: ``"batch"`` or ``"instance"``.
    """

    def __init__(
        self,
        channels: int = 1,
        size: int = REFERENCE_SIZE,
        base: int = BASE,
        *,
        local_base: int | None = None,
        residual_blocks: int = 2,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if size % SIZE_MULTIPLE:
            raise ValueError(f"size must be a multiple of {SIZE_MULTIPLE}, got {size}")
        local = local_base if local_base is not None else max(base // 2, 1)
        self.channels, self.size = channels, size
        self.patch_sizes = patch_sizes(size)
        self.boxes = frontal_boxes(size)
        self.local = nn.ModuleDict({part: LocalPathway(channels, local, norm) for part in PARTS})
        widths = [base, 2 * base, 4 * base, 4 * base]
        self.global_pathway = SkipEncoderDecoder(
            channels, widths, residual_blocks, norm, first_kernel=7
        )
        half = max(base // 2, 1)
        self.fuse = nn.Sequential(
            _conv(base + local + channels, base, norm),
            _conv(base, half, norm),
            nn.Conv2d(half, channels, 3, 1, 1),
        )

    def frontal_patches(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:func:`frontal_patches` of a true frontal ``image`` of this network's size."""
        self._check(image)
        return frontal_patches(image)

    def _check(self, image: torch.Tensor) -> None:
        if torch.onnx.is_in_onnx_export():
            return
        if tuple(image.shape[1:]) != (self.channels, self.size, self.size):
            raise ValueError(
                f"TPGANGenerator takes (N, {self.channels}, {self.size}, {self.size}) images, "
                f"got {tuple(image.shape)}"
            )

    def _paste(self, x: torch.Tensor, box: Box, value: float) -> torch.Tensor:
        """``x`` (N, C, h, w) on a full-size canvas of ``value`` at ``box``."""
        right = self.size - box.left - box.width
        bottom = self.size - box.top - box.height
        return F.pad(x, (box.left, right, box.top, bottom), value=value)

    def forward_parts(self, image: torch.Tensor, points: torch.Tensor) -> TPGANParts:
        """The frontal view with the local pathways' own patches (see :class:`TPGANParts`).

        Args:
            image: (N, C, S, S) in [-1, 1].
            points: (N, 68, 2) iBUG-68 points, (x, y) relative to the crop.
        """
        self._check(image)
        if not torch.onnx.is_in_onnx_export() and tuple(points.shape[1:]) != (NUM_POINTS, 2):
            raise ValueError(f"points must be (N, {NUM_POINTS}, 2), got {tuple(points.shape)}")
        centres = part_centres(points)
        patches, feature_canvases, patch_canvases = [], [], []
        for i, part in enumerate(PARTS):
            height, width = self.patch_sizes[part]
            features, patch = self.local[part](cut_patch(image, centres[:, i], height, width))
            patches.append(patch)
            feature_canvases.append(self._paste(features, self.boxes[part], 0.0))
            patch_canvases.append(self._paste(patch, self.boxes[part], -1.0))
        local = [reduce(torch.maximum, canvases) for canvases in (feature_canvases, patch_canvases)]
        fused = torch.cat([self.global_pathway(image), *local], dim=1)
        return TPGANParts(
            image=torch.tanh(self.fuse(fused)), patches=tuple(patches), centres=centres
        )

    def forward(self, image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) in [-1, 1] and (N, 68, 2) relative points → (N, C, S, S) frontal view."""
        return self.forward_parts(image, points)["image"]


# --- registered variants -------------------------------------------------------------------
# Registered by call, not by decorator, so the factories keep their concrete return types
# (as pix2pix's do).


def tpgan_generator(channels: int = 1, size: int = REFERENCE_SIZE) -> TPGANGenerator:
    """The 64 px grey generator (base 32, local pathways 16): 1.81M parameters, 1.0 GFLOP."""
    return TPGANGenerator(channels, size, BASE)


def tpgan_generator_tiny(channels: int = 1, size: int = REFERENCE_SIZE) -> TPGANGenerator:
    """Base 8 (local pathways 4), for tests: the same layout, 0.11M parameters."""
    return TPGANGenerator(channels, size, 8)


def tpgan_discriminator(channels: int = 1, ndf: int = 32) -> NLayerDiscriminator:
    """A PatchGAN on the (N, C, 64, 64) frontal view (real or generated): three stride-2 4x4
    convs then two stride-1 ones, (N, 1, 6, 6) logits at 64 px, each seeing 70 px (the whole
    crop but its corners: TP-GAN's D also scores a few large patches, 2x2 at 128 px)."""
    return NLayerDiscriminator(channels, ndf=ndf, n_layers=3, norm="batch")


def tpgan_discriminator_tiny(channels: int = 1) -> NLayerDiscriminator:
    """ndf 8: the same geometry, for tests."""
    return NLayerDiscriminator(channels, ndf=8, n_layers=3, norm="batch")


ARCHS.register("tpgan_generator")(tpgan_generator)
ARCHS.register("tpgan_generator_tiny")(tpgan_generator_tiny)
ARCHS.register("tpgan_discriminator")(tpgan_discriminator)
ARCHS.register("tpgan_discriminator_tiny")(tpgan_discriminator_tiny)
