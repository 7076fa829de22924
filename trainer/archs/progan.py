"""Progressive GAN (Karras et al., ICLR 2018): a generator and a discriminator that grow
from 4x4 to their final resolution, one doubling per stage, each new block faded in.

The layers are tkarras/progressive_growing_of_gans' ``G_paper`` / ``D_paper``
(``networks.py``) with its defaults, under our own module names (the official checkpoints
are TensorFlow pickles, not state_dicts):

* **G**: the latent ``z`` is pixel-normalised (``normalize_latents``), then the 4x4 block
  (``blocks.0``: ``dense``, tkarras ``4x4/Dense``, ``z → C·4·4`` with gain √2/4, reshaped;
  ``conv``, ``4x4/Conv``); each later block (``blocks.k``) doubles the size by nearest
  upsampling and holds ``conv0`` (``Conv0_up``) and ``conv1`` (``Conv1``), 3x3. Every conv
  and dense layer is followed by LeakyReLU(0.2) and pixel norm. One 1x1 ``to_rgb.k`` per
  resolution (``ToRGB_lod*``, gain 1, linear: no tanh).
* **D**: one 1x1 ``from_rgb.k`` per resolution (``FromRGB_lod*``, LeakyReLU), then from the
  top resolution down ``blocks.k`` (``conv0``, ``conv1``, 3x3, LeakyReLU, then 2x2 average
  pooling) to the 4x4 block ``blocks.0``: minibatch standard deviation (group 4, one extra
  feature map), ``conv`` (``4x4/Conv``), ``dense0`` (``4x4/Dense0``, ``C·4·4 → C``) and
  ``dense1`` (``Dense1``, ``→ 1``, gain 1). No normalisation in D.
* **Equalised learning rate** (``use_wscale``): every weight is stored as N(0, 1) and
  multiplied at run time by He's constant ``gain / sqrt(fan_in)`` (gain √2 unless said), so
  Adam's per-parameter step is the same for every layer whatever its fan-in. Biases start
  at zero.

**Growing.** ``forward(x, stage, alpha)`` runs the network at resolution ``4 · 2**stage``.
While a stage's block fades in (``alpha`` from 0 to 1) G's image is
``lerp(upsample(to_rgb[stage-1](h_prev)), to_rgb[stage](h), alpha)`` and D's features are
``lerp(from_rgb[stage-1](downsample(x)), blocks[stage](from_rgb[stage](x)), alpha)``, as
tkarras' ``lerp_clip`` structure (its ``lod`` is ``final_stage - stage + 1 - alpha``).
With the defaults (the final stage, ``alpha`` 1) G is what is exported: latent in, image
out. Parameters of the stages a network has not reached yet take no part (no gradient).

Sizes: tkarras' widths are ``min(8192 / 2**(stage + 1), 512)`` with a 512-d latent; the
``tiny`` variant here is narrow enough for a CPU (64, 64, 32, 16 channels at 4, 8, 16,
32 px, a 128-d latent).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

RGB = 3
SLOPE = 0.2  # tkarras' leaky_relu alpha
PIXEL_NORM_EPS = 1e-8
MBSTD_GROUP = 4  # tkarras' mbstd_group_size
START_RESOLUTION = 4
# The CPU-sized widths (4, 8, 16, 32 px) and latent of progan_tiny.
TINY_CHANNELS = (64, 64, 32, 16)
TINY_LATENT = 128


def he_constant(fan_in: int, gain: float = math.sqrt(2)) -> float:
    """He's per-layer constant ``gain / sqrt(fan_in)``: the run-time scale of a weight
    stored as N(0, 1) (equalised learning rate)."""
    return gain / math.sqrt(fan_in)


class EqualizedConv2d(nn.Conv2d):
    """A stride-1, same-padding conv whose weight is stored N(0, 1) and scaled at run time
    by :func:`he_constant` (``weight``, ``bias`` keys; ``scale`` is not a parameter). An
    ``nn.Conv2d``, so the export's FLOP count sees it."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2)
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        assert self.bias is not None
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = he_constant(in_channels * kernel_size * kernel_size, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class EqualizedLinear(nn.Linear):
    """A dense layer with the equalised learning rate of :class:`EqualizedConv2d`."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)) -> None:
        super().__init__(in_features, out_features)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)
        self.scale = he_constant(in_features, gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's feature vector to unit mean square (over channels, dim 1)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + PIXEL_NORM_EPS)


def minibatch_stddev(x: torch.Tensor, group_size: int = MBSTD_GROUP) -> torch.Tensor:
    """Append one feature map: the standard deviation of each feature over a group of
    ``group_size`` samples, averaged over features and pixels (tkarras'
    ``minibatch_stddev_layer``; sample ``i`` is in group ``i % (N / group)``).

    The group is the whole batch when the batch is smaller or not a multiple of it.

    Args:
        x: (N, C, H, W) features.

    Returns:
        (N, C + 1, H, W).
    """
    n, c, h, w = x.shape
    group = group_size if n % group_size == 0 else n
    y = x.reshape(group, -1, c, h, w)  # (G, M, C, H, W), M = N / G
    y = y - y.mean(dim=0, keepdim=True)
    y = torch.sqrt(y.pow(2).mean(dim=0) + PIXEL_NORM_EPS)  # (M, C, H, W)
    y = y.mean(dim=(1, 2, 3))  # (M,)
    y = y.reshape(-1, 1, 1, 1).repeat(group, 1, h, w)  # (N, 1, H, W)
    return torch.cat([x, y], dim=1)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, SLOPE)


def stage_count(resolution: int) -> int:
    """Stages from 4x4 to ``resolution`` (a power of two, at least 4): ``log2(res) - 1``."""
    stages = int(math.log2(resolution)) - 1
    if resolution < START_RESOLUTION or START_RESOLUTION * 2 ** (stages - 1) != resolution:
        raise ValueError(f"resolution must be a power of two of at least 4, not {resolution}")
    return stages


def _check_stage(stage: int, stages: int, alpha: float) -> None:
    if not 0 <= stage < stages:
        raise ValueError(f"stage {stage} outside 0..{stages - 1}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha {alpha} outside [0, 1]")


class _FirstGeneratorBlock(nn.Module):
    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        # tkarras: gain sqrt(2) / 4 on the 4x4 dense (its fan-in is the latent only).
        self.dense = EqualizedLinear(latent_dim, channels * 16, gain=math.sqrt(2) / 4)
        self.conv = EqualizedConv2d(channels, channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(pixel_norm(z)).view(-1, self.channels, 4, 4)
        x = pixel_norm(_act(x))
        return pixel_norm(_act(self.conv(x)))


class _GeneratorBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = pixel_norm(_act(self.conv0(x)))
        return pixel_norm(_act(self.conv1(x)))


class ProGANGenerator(nn.Module):
    """G(z): a (N, latent_dim) latent to a (N, 3, R, R) image, R = ``4 · 2**stage``.

    Args:
        latent_dim: length of z (tkarras: 512).
        channels: feature width per stage, 4x4 first; their number fixes the final
            resolution ``4 · 2**(len(channels) - 1)``.
    """

    def __init__(self, latent_dim: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        if not channels:
            raise ValueError("a ProGAN generator needs at least the 4x4 stage")
        self.latent_dim = latent_dim
        self.stages = len(channels)
        self.resolution = START_RESOLUTION * 2 ** (self.stages - 1)
        blocks: list[nn.Module] = [_FirstGeneratorBlock(latent_dim, channels[0])]
        blocks += [_GeneratorBlock(a, b) for a, b in itertools.pairwise(channels)]
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(EqualizedConv2d(c, RGB, 1, gain=1.0) for c in channels)

    def forward(
        self, z: torch.Tensor, stage: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """The image at ``stage`` (default: the final one) with its block faded in by
        ``alpha`` (1: fully in). The output is linear (no tanh), about [-1, 1]."""
        stage = self.stages - 1 if stage is None else stage
        _check_stage(stage, self.stages, alpha)
        x = previous = self.blocks[0](z)
        for k in range(1, stage + 1):
            previous = x
            x = self.blocks[k](x)
        image = self.to_rgb[stage](x)
        if stage > 0 and alpha < 1.0:
            coarse = F.interpolate(self.to_rgb[stage - 1](previous), scale_factor=2.0)
            image = torch.lerp(coarse, image, alpha)
        return image


class _FirstDiscriminatorBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(channels + 1, channels, 3)
        self.dense0 = EqualizedLinear(channels * 16, channels)
        self.dense1 = EqualizedLinear(channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _act(self.conv(minibatch_stddev(x)))
        x = _act(self.dense0(x.flatten(1)))
        return self.dense1(x)


class _DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _act(self.conv1(_act(self.conv0(x))))
        return F.avg_pool2d(x, 2)


class ProGANDiscriminator(nn.Module):
    """D(x): a (N, 3, R, R) image at ``stage``'s resolution to a (N, 1) WGAN score.

    Args:
        channels: feature width per stage, 4x4 first (as the generator's).
    """

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        if not channels:
            raise ValueError("a ProGAN discriminator needs at least the 4x4 stage")
        self.stages = len(channels)
        self.resolution = START_RESOLUTION * 2 ** (self.stages - 1)
        self.from_rgb = nn.ModuleList(EqualizedConv2d(RGB, c, 1) for c in channels)
        blocks: list[nn.Module] = [_FirstDiscriminatorBlock(channels[0])]
        blocks += [_DiscriminatorBlock(b, a) for a, b in itertools.pairwise(channels)]
        self.blocks = nn.ModuleList(blocks)

    def forward(
        self, image: torch.Tensor, stage: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """The score of ``image`` at ``stage`` (its size must be that stage's resolution)."""
        stage = self.stages - 1 if stage is None else stage
        _check_stage(stage, self.stages, alpha)
        side = START_RESOLUTION * 2**stage
        if image.shape[-2:] != (side, side):
            raise ValueError(f"stage {stage} takes {side}x{side} images, not {image.shape[-2:]}")
        x = _act(self.from_rgb[stage](image))
        for k in range(stage, -1, -1):
            x = self.blocks[k](x)
            if k == stage > 0 and alpha < 1.0:
                coarse = _act(self.from_rgb[stage - 1](F.avg_pool2d(image, 2)))
                x = torch.lerp(coarse, x, alpha)
        return x


def progan_tiny_generator() -> ProGANGenerator:
    """32x32 faces from a 128-d latent: 64, 64, 32, 16 channels (CPU-sized)."""
    return ProGANGenerator(TINY_LATENT, TINY_CHANNELS)


def progan_tiny_discriminator() -> ProGANDiscriminator:
    """The discriminator matching :func:`progan_tiny_generator`."""
    return ProGANDiscriminator(TINY_CHANNELS)


def progan_paper_generator(resolution: int = 1024) -> ProGANGenerator:
    """tkarras' widths (512 up to 32 px, then halving to 16 at 1024) and 512-d latent."""
    stages = stage_count(resolution)
    channels = tuple(min(8192 // 2 ** (k + 1), 512) for k in range(stages))
    return ProGANGenerator(512, channels)


def progan_paper_discriminator(resolution: int = 1024) -> ProGANDiscriminator:
    """The discriminator matching :func:`progan_paper_generator`."""
    stages = stage_count(resolution)
    return ProGANDiscriminator(tuple(min(8192 // 2 ** (k + 1), 512) for k in range(stages)))


ARCHS.register("progan_tiny")(progan_tiny_generator)
ARCHS.register("progan_tiny_discriminator")(progan_tiny_discriminator)
ARCHS.register("progan_paper")(progan_paper_generator)
ARCHS.register("progan_paper_discriminator")(progan_paper_discriminator)
