"""Compact VGG-style SR network (SRVGGNetCompact), parameter-compatible with Real-ESRGAN.

The network is a plain chain of 3x3 convs and activations at low resolution, a pixel shuffle
to full resolution, and a nearest-neighbour copy of the input added on top, so the convs only
learn the residual. ``body`` is a flat ``nn.ModuleList`` whose indices are the checkpoint keys
(``body.0.weight`` is the first conv, ``body.1.weight`` its PReLU slopes, ...).

Only an x4 ``realesr-animevideov3`` network exists upstream. The x2 and x3 models shipped for
ncnn are that same x4 network (byte-identical ``.bin``) followed by a bicubic downscale by 1/2
or 3/4; :class:`ResizedSRVGGNetCompact` reproduces that without changing any parameter name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS


def _activation(act_type: str, num_feat: int) -> nn.Module:
    """A fresh activation module; PReLU has per-channel learnt slopes, so never share one."""
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ValueError(f"unknown act_type {act_type!r}; expected relu, prelu or leakyrelu")


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact SR network.

    Args:
        num_in_ch: image channels in.
        num_out_ch: image channels out.
        num_feat: width of every hidden conv.
        num_conv: hidden conv+activation pairs after the first one.
        upscale: pixel-shuffle factor, i.e. the network's upscale.
        act_type: ``"prelu"``, ``"relu"`` or ``"leakyrelu"`` (slope 0.1).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_conv = num_conv
        self.upscale = upscale
        self.act_type = act_type

        layers: list[nn.Module] = [
            nn.Conv2d(num_in_ch, num_feat, 3, 1, 1),
            _activation(act_type, num_feat),
        ]
        for _ in range(num_conv):
            layers.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            layers.append(_activation(act_type, num_feat))
        # The last conv emits upscale^2 sub-pixel planes per output channel for the shuffle.
        layers.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale ``x`` (N, C, H, W) in [0, 1] by ``self.upscale``."""
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        # The convs predict a residual over nearest-neighbour upsampling of the input.
        base = F.interpolate(x, scale_factor=float(self.upscale), mode="nearest")
        return out + base


class ResizedSRVGGNetCompact(SRVGGNetCompact):
    """An SRVGGNetCompact followed by a bicubic resize to a smaller output scale.

    This is what the packaged ``realesr-animevideov3-x2`` / ``-x3`` models are: the x4 network
    plus a final bicubic ``Interp`` (1/2, 3/4). Subclassing, rather than wrapping, keeps the
    state_dict keys identical to the upstream x4 checkpoint.

    Args:
        num_in_ch: as for :class:`SRVGGNetCompact`.
        num_out_ch: as for :class:`SRVGGNetCompact`.
        num_feat: as for :class:`SRVGGNetCompact`.
        num_conv: as for :class:`SRVGGNetCompact`.
        upscale: the inner network's pixel-shuffle factor.
        act_type: as for :class:`SRVGGNetCompact`.
        out_scale: overall upscale factor; must not exceed ``upscale``.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
        out_scale: int = 4,
    ) -> None:
        super().__init__(num_in_ch, num_out_ch, num_feat, num_conv, upscale, act_type)
        if not 0 < out_scale <= upscale:
            raise ValueError(f"out_scale {out_scale} must be in 1..upscale={upscale}")
        self.out_scale = out_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale by ``upscale`` with the network, then bicubic-resize to ``out_scale``."""
        out = super().forward(x)
        if self.out_scale == self.upscale:
            return out
        # A fixed scale_factor (not a size) keeps H and W dynamic in ONNX export; bicubic
        # without antialias is what ncnn's Interp 0=3 computes (Keys kernel, a = -0.75).
        return F.interpolate(
            out,
            scale_factor=self.out_scale / self.upscale,
            mode="bicubic",
            align_corners=False,
        )


@ARCHS.register()
def realesr_animevideov3_x4() -> SRVGGNetCompact:
    """realesr-animevideov3 at x4: the only size Real-ESRGAN trained."""
    return SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4)


@ARCHS.register()
def realesr_animevideov3_x3() -> ResizedSRVGGNetCompact:
    """realesr-animevideov3 x4 network, bicubic-downscaled by 3/4 (as packaged for ncnn)."""
    return ResizedSRVGGNetCompact(out_scale=3, num_feat=64, num_conv=16, upscale=4)


@ARCHS.register()
def realesr_animevideov3_x2() -> ResizedSRVGGNetCompact:
    """realesr-animevideov3 x4 network, bicubic-downscaled by 1/2 (as packaged for ncnn)."""
    return ResizedSRVGGNetCompact(out_scale=2, num_feat=64, num_conv=16, upscale=4)
