"""SRGAN's networks (Ledig et al., CVPR 2017): the SRResNet generator and a VGG-style D.

**SRResNet** (:class:`SRResNet`), as the paper's figure 4 draws it: a 9x9 conv + PReLU;
``num_block`` residual blocks (3x3 conv, BN, PReLU, 3x3 conv, BN, plus the block's input);
a 3x3 conv + BN added to the first conv's output (the long skip); one (3x3 conv to 4x the
channels, PixelShuffle x2, PReLU) per factor 2 of the scale; a 9x9 conv to RGB. Keys::

    conv_first, prelu_first, body.{i}.{conv1,bn1,prelu,conv2,bn2}, conv_body, bn_body,
    upsample.{j}.{conv,prelu}, conv_last

Images are in [0, 1] in and out (as RRDBNet's), with no output activation. With
``upsample_skip`` the network adds its output to the bilinear x``scale`` upsampling of the
input, as BasicSR's MSRResNet does: the trunk then learns only the missing detail, which a
small network trained for minutes on a CPU needs to beat bicubic at all (the paper's full
SRResNet does without).

**VGG-style discriminator** (:class:`VGGStyleDiscriminator`): BasicSR's
``VGGStyleDiscriminator`` (SRGAN's D, also ESRGAN's): five stages of a 3x3 stride-1 conv and
a 4x4 stride-2 conv (BN after every conv but the first, LeakyReLU 0.2), channels ``nf``,
2nf, 4nf, 8nf, 8nf; then dense 100 and dense 1 (a raw logit). Keys ``conv{s}_{0,1}``,
``bn{s}_{0,1}`` (``bn0_0`` absent), ``linear1``, ``linear2``: BasicSR's, so its 128 px
checkpoints load. The input side must be a multiple of 32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

LRELU_SLOPE = 0.2
STAGES = 5  # stride-2 convs of the discriminator: a 128 px input ends at 4 x 4


class ResidualBlockBN(nn.Module):
    """conv-BN-PReLU-conv-BN plus the input (SRGAN's B residual blocks)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(num_feat)
        self.prelu = nn.PReLU(num_feat)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's residual added to ``x``."""
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class PixelShuffleUpsample(nn.Module):
    """conv to 4x the channels, PixelShuffle x2 (sub-pixel convolution), PReLU."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.prelu = nn.PReLU(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` at twice the resolution."""
        return self.prelu(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """The SRGAN generator.

    Args:
        num_in_ch: image channels in.
        num_out_ch: image channels out.
        scale: upscale factor, a power of two (the paper: 4).
        num_feat: trunk width (the paper: 64).
        num_block: residual blocks (the paper: 16).
        upsample_skip: add the bilinear upsampling of the input to the output (MSRResNet).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 16,
        upsample_skip: bool = False,
    ) -> None:
        super().__init__()
        steps = round(math.log2(scale)) if scale >= 2 else 0
        if scale < 2 or 2**steps != scale:
            raise ValueError(f"SRResNet upsamples by powers of two, not {scale}")
        self.scale = scale
        self.upsample_skip = upsample_skip
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, 1, 4)
        self.prelu_first = nn.PReLU(num_feat)
        self.body = nn.Sequential(*(ResidualBlockBN(num_feat) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn_body = nn.BatchNorm2d(num_feat)
        self.upsample = nn.Sequential(*(PixelShuffleUpsample(num_feat) for _ in range(steps)))
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)
        if upsample_skip:
            # The trunk adds detail to an interpolation: start it near zero, so an untrained
            # network is already the bilinear upsampling rather than noise.
            nn.init.zeros_(self.conv_last.weight)
            if self.conv_last.bias is not None:
                nn.init.zeros_(self.conv_last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale ``x`` (N, C, H, W) in [0, 1] by ``self.scale``."""
        feat = self.prelu_first(self.conv_first(x))
        feat = feat + self.bn_body(self.conv_body(self.body(feat)))
        out = self.conv_last(self.upsample(feat))
        if self.upsample_skip:
            out = out + F.interpolate(
                x, scale_factor=float(self.scale), mode="bilinear", align_corners=False
            )
        return out


class VGGStyleDiscriminator(nn.Module):
    """SRGAN's / ESRGAN's discriminator (BasicSR's key layout).

    Args:
        num_in_ch: image channels.
        num_feat: channels of the first stage (BasicSR: 64).
        input_size: the square side it judges, a multiple of 32 (BasicSR: 128).
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size % 2**STAGES:
            raise ValueError(f"input_size must be a multiple of {2**STAGES}, not {input_size}")
        self.input_size = input_size
        widths = [num_feat * m for m in (1, 2, 4, 8, 8)]
        self.conv0_0 = nn.Conv2d(num_in_ch, widths[0], 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(widths[0], widths[0], 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(widths[0], affine=True)
        for stage in range(1, STAGES):
            cin, cout = widths[stage - 1], widths[stage]
            self.add_module(f"conv{stage}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            self.add_module(f"bn{stage}_0", nn.BatchNorm2d(cout, affine=True))
            self.add_module(f"conv{stage}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            self.add_module(f"bn{stage}_1", nn.BatchNorm2d(cout, affine=True))
        side = input_size // 2**STAGES
        self.linear1 = nn.Linear(widths[-1] * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1) logits for (N, C, input_size, input_size) images in [0, 1]."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"the discriminator judges {self.input_size} px images, not {x.shape}")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for stage in range(1, STAGES):
            for half in (0, 1):
                conv = getattr(self, f"conv{stage}_{half}")
                bn = getattr(self, f"bn{stage}_{half}")
                feat = self.lrelu(bn(conv(feat)))
        feat = self.lrelu(self.linear1(feat.flatten(1)))
        out: torch.Tensor = self.linear2(feat)
        return out


@ARCHS.register()
def srresnet_x4() -> SRResNet:
    """SRResNet as in the paper: 16 blocks of 64 channels, x4 (1.5M parameters)."""
    return SRResNet(scale=4, num_feat=64, num_block=16)


@ARCHS.register()
def srresnet_x4_tiny() -> SRResNet:
    """A CPU-sized SRResNet: 4 blocks of 32 channels, x4, with the bilinear skip."""
    return SRResNet(scale=4, num_feat=32, num_block=4, upsample_skip=True)


@ARCHS.register()
def vgg_discriminator(input_size: int = 128) -> VGGStyleDiscriminator:
    """BasicSR's VGGStyleDiscriminator (64 channels) for ``input_size`` px images."""
    return VGGStyleDiscriminator(num_feat=64, input_size=input_size)


@ARCHS.register()
def vgg_discriminator_tiny(input_size: int = 128) -> VGGStyleDiscriminator:
    """The same layout at 16 channels, for CPU runs."""
    return VGGStyleDiscriminator(num_feat=16, input_size=input_size)
