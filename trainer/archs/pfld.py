"""PFLD (Guo et al. 2019, "A Practical Facial Landmark Detector"): a MobileNetV2 backbone with
multi-scale fully connected fusion, and the auxiliary net that regresses head pose in training.

Parameter-compatible with polarisZhao/PFLD-pytorch (``PFLDInference`` and ``AuxiliaryNet`` of
``models/pfld.py``, the reference PyTorch implementation) at ``width`` 1, for 112x112 crops:

* ``conv1`` 3x3/2 (3 → 64) + ``bn1``, ``conv2`` 3x3 (64 → 64) + ``bn2`` (56x56);
* MobileNetV2 inverted residuals (1x1 expand, 3x3 depthwise, 1x1 project, each with BN;
  ``.conv.{0,1,3,4,6,7}``): ``conv3_1`` (/2, 28x28) and ``block3_2`` .. ``block3_5``, 64 ch,
  expansion 2 (their output feeds the auxiliary net); ``conv4_1`` (/2, 14x14, 128 ch,
  expansion 2), ``conv5_1`` and ``block5_2`` .. ``block5_6`` (expansion 4), ``conv6_1``
  (128 → 16, expansion 2);
* the multi-scale fusion: S1 = the 14x14x16 map averaged, S2 = ``conv7`` (3x3/2 → 32, 7x7)
  averaged, S3 = ``conv8`` (7x7 valid → 128, 1x1, ReLU); ``fc`` maps their 176 values to
  2 x points (polarisZhao: 98 WFLW points; here 68 iBUG points);
* :class:`PFLDAuxiliary` (``conv1`` .. ``conv4`` conv-BN-ReLU, a 3x3 max-pool, ``fc1``,
  ``fc2``): yaw, pitch and roll from the 28x28 map. It exists only in training.

The points are relative to the crop ((0, 0) its top-left corner, (1, 1) its bottom-right),
which is what the reference trains on; :meth:`PFLD.forward` answers ``(N, points, 2)`` and
:meth:`PFLD.features_and_points` also the map the auxiliary net reads. Inputs are RGB in
[0, 1] (the reference's ``ToTensor``, no mean): the card's value range says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int) -> nn.Sequential:
    """Conv (no bias, padding 1 whatever the kernel, as the reference's), BN, ReLU; keys
    ``0.weight`` and ``1.*``. The auxiliary net's 7x7 conv thus maps 7x7 to 3x3."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise (``stride``), 1x1 project (linear)."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, residual: bool, expand: int
    ) -> None:
        super().__init__()
        if residual and (stride != 1 or in_channels != out_channels):
            raise ValueError("a residual block keeps its size and width")
        self.residual = residual
        hidden = in_channels * expand
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


class PFLD(nn.Module):
    """The landmark network (polarisZhao's ``PFLDInference``)."""

    def __init__(self, num_points: int = 68, width: float = 1.0) -> None:
        super().__init__()
        self.num_points = num_points
        c64, c128, c16, c32, c_s3 = (max(8, round(c * width)) for c in (64, 128, 16, 32, 128))
        self.conv1 = nn.Conv2d(3, c64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c64)
        self.conv2 = nn.Conv2d(c64, c64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c64)
        self.conv3_1 = InvertedResidual(c64, c64, 2, False, 2)
        self.block3_2 = InvertedResidual(c64, c64, 1, True, 2)
        self.block3_3 = InvertedResidual(c64, c64, 1, True, 2)
        self.block3_4 = InvertedResidual(c64, c64, 1, True, 2)
        self.block3_5 = InvertedResidual(c64, c64, 1, True, 2)
        self.conv4_1 = InvertedResidual(c64, c128, 2, False, 2)
        self.conv5_1 = InvertedResidual(c128, c128, 1, False, 4)
        self.block5_2 = InvertedResidual(c128, c128, 1, True, 4)
        self.block5_3 = InvertedResidual(c128, c128, 1, True, 4)
        self.block5_4 = InvertedResidual(c128, c128, 1, True, 4)
        self.block5_5 = InvertedResidual(c128, c128, 1, True, 4)
        self.block5_6 = InvertedResidual(c128, c128, 1, True, 4)
        self.conv6_1 = InvertedResidual(c128, c16, 1, False, 2)
        self.conv7 = conv_bn(c16, c32, 3, 2)
        self.conv8 = nn.Conv2d(c32, c_s3, 7, 1, 0)
        self.fc = nn.Linear(c16 + c32 + c_s3, 2 * num_points)
        self.aux_channels = c64

    def features_and_points(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the 28x28 map the auxiliary net reads, the (N, points, 2) relative points)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.conv3_1(x)
        x = self.block3_5(self.block3_4(self.block3_3(self.block3_2(x))))
        features = x
        x = self.conv5_1(self.conv4_1(x))
        x = self.block5_6(self.block5_5(self.block5_4(self.block5_3(self.block5_2(x)))))
        x = self.conv6_1(x)
        s1 = x.mean(dim=(2, 3))
        x = self.conv7(x)
        s2 = x.mean(dim=(2, 3))
        s3 = F.relu(self.conv8(x)).flatten(1)
        points = self.fc(torch.cat([s1, s2, s3], dim=1))
        return features, points.view(-1, self.num_points, 2)

    def forward(
        self, x: torch.Tensor, with_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The points; with ``with_features`` (training, through a DDP wrapper's forward),
        :meth:`features_and_points`."""
        features, points = self.features_and_points(x)
        return (features, points) if with_features else points


class PFLDAuxiliary(nn.Module):
    """Yaw, pitch and roll (radians) from PFLD's 28x28 map (polarisZhao's ``AuxiliaryNet``)."""

    def __init__(self, in_channels: int = 64) -> None:
        super().__init__()
        self.conv1 = conv_bn(in_channels, 128, 3, 2)
        self.conv2 = conv_bn(128, 128, 3, 1)
        self.conv3 = conv_bn(128, 32, 3, 2)
        self.conv4 = conv_bn(32, 128, 7, 1)
        self.fc1 = nn.Linear(128, 32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.conv4(self.conv3(self.conv2(self.conv1(features))))
        x = F.max_pool2d(x, 3).flatten(1)
        return self.fc2(self.fc1(x))


@ARCHS.register()
def pfld(num_points: int = 68, width: float = 1.0) -> PFLD:
    """PFLD at polarisZhao's width (1.0, 1.26M parameters for 68 points) or narrower."""
    return PFLD(num_points=num_points, width=width)


@ARCHS.register()
def pfld_half(num_points: int = 68) -> PFLD:
    """PFLD at half width (0.33M parameters, 0.2 GFLOP per 112 px crop against the full
    width's 0.77): what the shipped CPU config trains."""
    return PFLD(num_points=num_points, width=0.5)


@ARCHS.register()
def pfld_auxiliary(in_channels: int = 64) -> PFLDAuxiliary:
    """PFLD's training-time pose head."""
    return PFLDAuxiliary(in_channels)
