"""face-api.js ``FaceLandmark68Net``: 68 iBUG points from a 112x112 face crop (357K params).

The topology of the network npm ``@vladmandic/face-api`` ships as ``model/face_landmark_68_
model.bin`` (tfjs, uint8-quantised; :mod:`trainer.weights.faceapi_landmarks` reads it), after
face-api.js's ``FaceLandmark68Net.runNet``:

* the input is the crop padded to a square (centred, black) and resized to 112x112, RGB, minus
  the channel means (122.782, 117.001, 104.298), divided by 255 (the card's mean and std);
* four dense blocks ``dense0`` .. ``dense3`` (32, 64, 128, 256 channels), each halving the
  resolution (112 → 56 → 28 → 14 → 7). A block's ``conv0`` is the stride-2 conv (a plain 3x3
  conv in ``dense0``, a depthwise-separable one after), and ``conv1`` .. ``conv3`` are
  separable 3x3 convs whose inputs are the ReLU of the sum of every earlier output in the
  block (``out1``, ``out1 + out2``, ``out1 + out2 + out3``); the block returns the ReLU of
  the sum of all four;
* a 7x7 average pool (stride 2, valid: one value per channel) and the dense ``fc``
  (256 → 136), read as 68 (x, y) pairs.

The 136 outputs are the points' positions relative to the padded square crop, (0, 0) its
top-left corner and (1, 1) its bottom-right; here they come out as ``(N, 68, 2)``.

TensorFlow's ``same`` padding is asymmetric under stride 2 on even sizes (nothing before,
one row and column after), unlike PyTorch's symmetric ``padding=1``: the stride-2 convs pad
explicitly so the trained weights see the pixels they were trained on. Module names follow the
tfjs weight names (``dense1.conv0.depthwise`` is ``dense1/conv0/depthwise_filter``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

NUM_POINTS = 68
INPUT_SIZE = 112
BLOCK_CHANNELS = (32, 64, 128, 256)


class SeparableConv(nn.Module):
    """tfjs ``separableConv2d`` + bias: a 3x3 depthwise conv (no bias), a 1x1 pointwise conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, padding=0, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(same_pad(x, self.stride)))


class PlainConv(nn.Module):
    """tfjs ``conv2d(..., 'same')`` + bias (``dense0.conv0``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(same_pad(x, self.stride))


def same_pad(x: torch.Tensor, stride: int, kernel: int = 3) -> torch.Tensor:
    """TensorFlow's ``same`` zero padding of ``x`` for a ``kernel`` conv at ``stride``: the
    total ``max((ceil(n / s) - 1) s + k - n, 0)`` split with the smaller half before."""
    pads: list[int] = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad's order: width first
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class DenseBlock4(nn.Module):
    """face-api.js's ``denseBlock4``: four convs, each fed the ReLU of the sum before it."""

    def __init__(self, in_channels: int, channels: int, *, first: bool) -> None:
        super().__init__()
        stem = PlainConv if first else SeparableConv
        self.conv0: nn.Module = stem(in_channels, channels, 2)
        self.conv1 = SeparableConv(channels, channels, 1)
        self.conv2 = SeparableConv(channels, channels, 1)
        self.conv3 = SeparableConv(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceLandmark68Net(nn.Module):
    """(N, 3, 112, 112) normalised crops → (N, 68, 2) points relative to the crop."""

    def __init__(self) -> None:
        super().__init__()
        widths = (3, *BLOCK_CHANNELS)
        self.dense0 = DenseBlock4(widths[0], widths[1], first=True)
        self.dense1 = DenseBlock4(widths[1], widths[2], first=False)
        self.dense2 = DenseBlock4(widths[2], widths[3], first=False)
        self.dense3 = DenseBlock4(widths[3], widths[4], first=False)
        self.fc = nn.Linear(BLOCK_CHANNELS[-1], 2 * NUM_POINTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dense3(self.dense2(self.dense1(self.dense0(x))))
        pooled = F.avg_pool2d(out, kernel_size=7, stride=2)
        return self.fc(pooled.flatten(1)).view(-1, NUM_POINTS, 2)


@ARCHS.register()
def faceapi_landmark68() -> FaceLandmark68Net:
    """face-api.js's FaceLandmark68Net (the full model, not the ``_tiny_`` one)."""
    return FaceLandmark68Net()
