"""IResNet (the "improved" pre-activation ResNet of ArcFace), parameter-compatible with insightface.

Mirrors ``recognition/arcface_torch/backbones/iresnet.py`` of deepinsight/insightface, so
its released ``backbone.pth`` files load with ``strict=True``. The names are the contract::

    conv1, bn1, prelu                      stem (3x3 stride-1 conv at 112 px)
    layer{1..4}.{i}.bn1, conv1, bn2, prelu, conv2, bn3, downsample.0 (1x1 conv), downsample.1
    bn2, dropout, fc, features             head: BN2d → flatten → dropout → fc → BatchNorm1d

Input: (N, 3, 112, 112) RGB, ``(rgb / 255 - 0.5) / 0.5`` (i.e. mean 127.5, std 127.5 on 0-255
values), faces aligned to the ArcFace 112x112 five-point template. Output: (N, 512)
embeddings, not normalised (compare with cosine similarity).

No weights are shipped or imported here; the module only fixes the architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS

# insightface builds every BatchNorm with eps=1e-5 (PyTorch's default, stated explicitly
# there); kept as a named constant because changing it silently breaks released weights.
BN_EPS = 1e-5
EMBEDDING_DIM = 512
INPUT_SIZE = 112
# The head flattens layer4's 7x7 map (112 px input / 16): the fc layer's input size depends on it.
_FINAL_MAP = INPUT_SIZE // 16


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """BN → conv3x3 → BN → PReLU → conv3x3(stride) → BN, plus the (projected) input.

    Unlike torchvision's BasicBlock the block starts with a BN, has no activation after the
    add, and strides in its *second* convolution.

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: stride of ``conv2`` (2 at the first block of each stage).
        downsample: projection of the input (1x1 conv + BN) when shape changes.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block; no activation after the sum."""
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """ArcFace's IResNet backbone.

    Args:
        layers: blocks in each of the four stages, e.g. ``(3, 4, 14, 3)`` for IResNet-50.
        dropout: dropout probability before ``fc`` (0 for the released models).
        num_features: embedding size.
    """

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        dropout: float = 0.0,
        num_features: int = EMBEDDING_DIM,
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes, eps=BN_EPS)
        self.prelu = nn.PReLU(self.inplanes)
        self.layer1 = self._make_layer(64, layers[0], stride=2)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.bn2 = nn.BatchNorm2d(512 * IBasicBlock.expansion, eps=BN_EPS)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        self.fc = nn.Linear(512 * IBasicBlock.expansion * _FINAL_MAP * _FINAL_MAP, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=BN_EPS)
        self._init_weights()

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample: nn.Module | None = None
        if stride != 1 or self.inplanes != planes * IBasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * IBasicBlock.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * IBasicBlock.expansion, eps=BN_EPS),
            )
        stage = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * IBasicBlock.expansion
        stage.extend(IBasicBlock(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*stage)

    def _init_weights(self) -> None:
        # Same scheme as upstream (N(0, 0.1) convs, unit BNs), so training from scratch here
        # starts where an insightface run would.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # The embedding BN's scale is fixed at 1 upstream (it only centres and whitens).
        nn.init.ones_(self.features.weight)
        self.features.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings of aligned, normalised faces: (N, 3, 112, 112) → (N, 512)."""
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


@ARCHS.register()
def iresnet50() -> IResNet:
    """IResNet-50 (ArcFace r50): stages of 3, 4, 14, 3 blocks, 512-d embedding."""
    return IResNet((3, 4, 14, 3))


@ARCHS.register()
def iresnet100() -> IResNet:
    """IResNet-100 (ArcFace r100): stages of 3, 13, 30, 3 blocks, 512-d embedding."""
    return IResNet((3, 13, 30, 3))
