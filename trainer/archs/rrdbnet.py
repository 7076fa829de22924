"""ESRGAN / Real-ESRGAN generator (RRDBNet), parameter-compatible with BasicSR.

The attribute names (``conv_first``, ``body.{i}.rdb{1,2,3}.conv{1..5}``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``) are part of the contract: official
``.pth`` files and our ncnn importer both address parameters by them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

# Both constants are fixed by the published architecture, not tunable: the released weights
# were trained with them, and the ncnn exports bake them in (9=2 slope 0.2, Eltwise 0.2).
LRELU_SLOPE = 0.2
RESIDUAL_SCALE = 0.2


def _scaled_kaiming_(modules: list[nn.Conv2d], scale: float) -> None:
    """Kaiming-normal init shrunk by ``scale``, zero bias.

    ESRGAN starts the dense blocks close to identity (small residual branches); without the
    shrink a 23-block stack explodes at the first training step.
    """
    for conv in modules:
        nn.init.kaiming_normal_(conv.weight)
        with torch.no_grad():
            conv.weight.mul_(scale)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the block's output is scaled before the skip add.

    Args:
        num_feat: channels in and out.
        num_grow_ch: channels each intermediate conv adds to the running concatenation.
    """

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)
        _scaled_kaiming_([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense block with a 0.2-scaled residual."""
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks under one more scaled skip.

    Args:
        num_feat: channels in and out.
        num_grow_ch: growth channels of the inner dense blocks.
    """

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Three dense blocks, then a 0.2-scaled residual."""
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """The ESRGAN generator as defined by BasicSR.

    The trunk always works at the x4 geometry (two nearest-neighbour x2 upsamplings). For
    ``scale`` 2 or 1 the input is first pixel-unshuffled by 2 or 4, trading resolution for
    channels, so the same trunk yields an overall x2 or x1 network.

    Args:
        num_in_ch: image channels in.
        num_out_ch: image channels out.
        scale: overall upscale factor: 4, 2 or 1.
        num_feat: trunk width.
        num_block: number of RRDB blocks (23 for x4plus, 6 for the anime model).
        num_grow_ch: growth channels of the dense blocks.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, not {scale}")
        self.scale = scale
        # The unshuffle folds each (4/scale)^2 block of pixels into channels.
        unshuffle = 4 // scale
        self.conv_first = nn.Conv2d(num_in_ch * unshuffle * unshuffle, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale ``x`` (N, C, H, W) in [0, 1] by ``self.scale``.

        For scale 2 / 1, H and W must be divisible by 2 / 4 (pixel unshuffle).
        """
        # F.pixel_unshuffle rather than a hand-written view/permute chain: it has its own ONNX
        # symbolic, whereas reshapes computed from x.shape tend to freeze H and W into the
        # exported graph.
        feat = x if self.scale == 4 else F.pixel_unshuffle(x, 4 // self.scale)
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2.0, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2.0, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


@ARCHS.register()
def realesrgan_x4plus() -> RRDBNet:
    """RealESRGAN_x4plus: the general-purpose 23-block x4 generator."""
    return RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)


@ARCHS.register()
def realesrgan_x4plus_anime_6b() -> RRDBNet:
    """RealESRGAN_x4plus_anime_6B: the 6-block x4 generator tuned for illustrations."""
    return RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=6, num_grow_ch=32)


@ARCHS.register()
def rrdbnet_x4_tiny() -> RRDBNet:
    """A CPU-sized ESRGAN generator (2 RRDB of 32 channels, growth 16), x4, same keys."""
    return RRDBNet(num_in_ch=3, num_out_ch=3, scale=4, num_feat=32, num_block=2, num_grow_ch=16)
