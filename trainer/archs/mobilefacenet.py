"""MobileFaceNet as in insightface's ``recognition/arcface_torch/backbones/mobilefacenet.py``.

The module tree (and therefore every state_dict key) follows arcface_torch's ``get_mbf``
model so that its ``backbone.pth`` files load with ``strict=True``::

    layers.0        ConvBlock 3x3/2, 3 → 64*scale       (.layers.{0 conv, 1 bn, 2 prelu})
    layers.1        ConvBlock 3x3/1 in 64 groups        (blocks[0] == 1)
                    or Residual(...)                    (blocks[0] > 1)
    layers.2, 4, 6  DepthWise stride-2 bottlenecks      (.layers.{0, 1, 2})
    layers.3, 5, 7  Residual stacks of DepthWise blocks (.layers.{i}.layers.{0, 1, 2})
    conv_sep        ConvBlock 1x1, 128*scale → 512
    features        GDC: .layers.{0 LinearBlock 7x7 depthwise, 1 Flatten,
                              2 Linear (no bias), 3 BatchNorm1d}

A ConvBlock is conv (no bias) → BN → PReLU, a LinearBlock conv → BN; a DepthWise block is
1x1 expand → 3x3 depthwise → 1x1 project (+ input when residual). The "groups" argument of
the upstream blocks is the *expanded* width, hard-coded per stage (128, 256, 512, 256)
independently of ``scale``; it is kept as upstream has it.

Input: (N, 3, 112, 112) RGB normalised ``(rgb / 255 - 0.5) / 0.5``. Output: (N, 512)
embeddings (after the GDC's BatchNorm1d), not normalised.

No weights are shipped or imported here; the module only fixes the architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS

EMBEDDING_DIM = 512
INPUT_SIZE = 112
# Channels entering the GDC head; fixed upstream regardless of scale.
_HEAD_CHANNELS = 512
# The GDC's depthwise kernel covers the whole final map (112 px / 16).
_FINAL_MAP = INPUT_SIZE // 16

Pair = tuple[int, int]


class ConvBlock(nn.Module):
    """Conv (no bias) → BatchNorm → PReLU, under ``.layers`` as upstream."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: Pair = (1, 1),
        stride: Pair = (1, 1),
        padding: Pair = (0, 0),
        groups: int = 1,
        *,
        activation: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_c),
        ]
        if activation:
            layers.append(nn.PReLU(out_c))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Conv, BN (, PReLU)."""
        return self.layers(x)


class LinearBlock(ConvBlock):
    """Conv (no bias) → BatchNorm, no activation (a linear bottleneck); same keys."""

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: Pair = (1, 1),
        stride: Pair = (1, 1),
        padding: Pair = (0, 0),
        groups: int = 1,
    ) -> None:
        super().__init__(in_c, out_c, kernel, stride, padding, groups, activation=False)


class DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 to ``groups`` channels, 3x3 depthwise, 1x1 to ``out_c``.

    Args:
        in_c: input channels.
        out_c: output channels.
        residual: add the input to the output (only when shapes agree: stride 1, in == out).
        kernel: depthwise kernel.
        stride: depthwise stride.
        padding: depthwise padding.
        groups: expanded width, which is also the depthwise conv's group count.
    """

    def __init__(
        self,
        in_c: int,
        out_c: int,
        residual: bool = False,
        kernel: Pair = (3, 3),
        stride: Pair = (2, 2),
        padding: Pair = (1, 1),
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_c, groups),
            ConvBlock(groups, groups, kernel, stride, padding, groups=groups),
            LinearBlock(groups, out_c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck, plus the input if residual."""
        out = self.layers(x)
        return x + out if self.residual else out


class Residual(nn.Module):
    """``num_block`` residual DepthWise blocks at constant width ``c``."""

    def __init__(
        self,
        c: int,
        num_block: int,
        groups: int,
        kernel: Pair = (3, 3),
        stride: Pair = (1, 1),
        padding: Pair = (1, 1),
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(DepthWise(c, c, True, kernel, stride, padding, groups) for _ in range(num_block))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        return self.layers(x)


class Flatten(nn.Module):
    """(N, C, 1, 1) → (N, C); a module (not a call) so the GDC indices match upstream."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten all but the batch dimension."""
        return torch.flatten(x, 1)


class GDC(nn.Module):
    """Global depthwise convolution head: 7x7 depthwise → flatten → linear → BatchNorm1d."""

    def __init__(self, embedding_size: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            LinearBlock(
                _HEAD_CHANNELS,
                _HEAD_CHANNELS,
                kernel=(_FINAL_MAP, _FINAL_MAP),
                groups=_HEAD_CHANNELS,
            ),
            Flatten(),
            nn.Linear(_HEAD_CHANNELS, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 512, 7, 7) → (N, embedding_size)."""
        return self.layers(x)


class MobileFaceNet(nn.Module):
    """arcface_torch's MobileFaceNet (``get_mbf``; ``blocks=(2, 8, 12, 4), scale=4`` is mbf_large).

    Args:
        num_features: embedding size.
        blocks: residual blocks in the four stacks.
        scale: width multiplier of the 64/128-channel trunk.
    """

    def __init__(
        self,
        num_features: int = EMBEDDING_DIM,
        blocks: tuple[int, int, int, int] = (1, 4, 6, 2),
        scale: int = 2,
    ) -> None:
        super().__init__()
        narrow, wide = 64 * scale, 128 * scale
        self.layers = nn.ModuleList()
        self.layers.append(ConvBlock(3, narrow, kernel=(3, 3), stride=(2, 2), padding=(1, 1)))
        if blocks[0] == 1:
            # Upstream's second stem conv uses 64 groups whatever the width (depthwise only
            # at scale 1).
            self.layers.append(
                ConvBlock(narrow, narrow, kernel=(3, 3), stride=(1, 1), padding=(1, 1), groups=64)
            )
        else:
            self.layers.append(Residual(narrow, num_block=blocks[0], groups=128))
        self.layers.extend(
            [
                DepthWise(narrow, narrow, stride=(2, 2), groups=128),
                Residual(narrow, num_block=blocks[1], groups=128),
                DepthWise(narrow, wide, stride=(2, 2), groups=256),
                Residual(wide, num_block=blocks[2], groups=256),
                DepthWise(wide, wide, stride=(2, 2), groups=512),
                Residual(wide, num_block=blocks[3], groups=256),
            ]
        )
        self.conv_sep = ConvBlock(wide, _HEAD_CHANNELS)
        self.features = GDC(num_features)
        self._init_weights()

    def _init_weights(self) -> None:
        # Upstream's scheme: Kaiming (fan_out) for convs and the linear layer, unit BNs.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of aligned, normalised faces: (N, 3, 112, 112) → (N, 512)."""
        for layer in self.layers:
            x = layer(x)
        return self.features(self.conv_sep(x))


@ARCHS.register()
def mobilefacenet() -> MobileFaceNet:
    """MobileFaceNet as arcface_torch's ``mbf``: blocks (1, 4, 6, 2), scale 2, 512-d."""
    return MobileFaceNet()
