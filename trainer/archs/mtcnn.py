"""MTCNN's three cascaded networks, parameter-compatible with facenet-pytorch 2.6.0.

Layer names (``conv1``, ``prelu1``, ``pool1``, ..., ``conv4_1``/``conv4_2`` in P-Net,
``dense4``/``dense5_{1,2}`` in R-Net, ``dense5``/``dense6_{1,2,3}`` in O-Net) are the keys of
facenet-pytorch's ``data/{pnet,rnet,onet}.pt``, which load here with ``strict=True``.

Input to every net: RGB, NCHW, float32, already normalised as the stage's card says
(``(x - 127.5) / 128``, ``trainer.catalog.faces``); facenet-pytorch's ``detect_face`` does that
outside the nets, so the nets do not. P-Net is fully convolutional (any H, W >= 12); R-Net
needs 24x24 crops and O-Net 48x48.

Output order is facenet-pytorch's, box regression first and probabilities last:

* P-Net: ``(reg [B,4,h,w], prob [B,2,h,w])``, softmax over channels (channel 1 = face).
* R-Net: ``(reg [B,4], prob [B,2])``.
* O-Net: ``(reg [B,4], landmarks [B,10], prob [B,2])``; the landmarks are five x values then
  five y values (``x1..x5, y1..y5``), as fractions of the crop's width and height.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

RNET_SIZE = 24
ONET_SIZE = 48


def _flatten_transposed(x: torch.Tensor) -> torch.Tensor:
    """Flatten ``[B, C, H, W]`` in (W, H, C) order, as the converted Caffe weights expect.

    The dense layers' weights come from a Caffe model whose feature maps were transposed
    relative to PyTorch's; facenet-pytorch compensates by permuting to ``(0, 3, 2, 1)``
    before flattening, so the first dense layer would be silently wrong without it.
    """
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal network: a 12x12-receptive-field, stride-2 fully convolutional detector."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B,3,H,W]`` normalised RGB → ``(reg [B,4,h,w], prob [B,2,h,w])``."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), F.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network: scores and refines 24x24 candidate crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B,3,24,24]`` normalised RGB → ``(reg [B,4], prob [B,2])``."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_transposed(x)))
        return self.dense5_2(x), F.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network: final score, box refinement and five landmarks on 48x48 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B,3,48,48]`` normalised RGB → ``(reg [B,4], landmarks [B,10], prob [B,2])``."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_transposed(x)))
        return self.dense6_2(x), self.dense6_3(x), F.softmax(self.dense6_1(x), dim=1)


@ARCHS.register()
def mtcnn_pnet() -> PNet:
    """MTCNN P-Net (facenet-pytorch ``pnet.pt``)."""
    return PNet()


@ARCHS.register()
def mtcnn_rnet() -> RNet:
    """MTCNN R-Net (facenet-pytorch ``rnet.pt``)."""
    return RNet()


@ARCHS.register()
def mtcnn_onet() -> ONet:
    """MTCNN O-Net (facenet-pytorch ``onet.pt``)."""
    return ONet()
