"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

The network is the ``anet_type`` of dlib's ``dnn_face_recognition_ex.cpp``: a 7x7/2 stem
convolution, a 3x3/2 max pool, 14 residual blocks in five stages (32, 64, 128, 256, 256
channels; every stage after the first opens with a stride-2 block) and a bias-free 128-d
fully connected layer after global average pooling. dlib has no batch norm at inference:
each convolution is followed by a per-channel ``affine_`` (scale, shift), kept here as
:class:`ChannelAffine`.

There is no upstream PyTorch checkpoint, so the parameter names are ours; they are the
contract between this module and :func:`trainer.weights.dlib.state_dict_from_dlib_dat`::

    stem.conv, stem.affine
    stages.{s}.blocks.{b}.conv1, .affine1, .conv2, .affine2
    fc

Stage ``s`` is dlib's ``alevel{4 - s}`` (dlib names its levels from the output).

Normalisation contract: :class:`DlibResNet` takes RGB chips already normalised as its card
(``trainer.catalog.faces``, ``dlib-resnet-v1``) says: ``(rgb - mean) / 256`` with ``rgb`` in
[0, 255] and dlib's stored channel means. Keeping the normalisation outside matches how every
other served model is described (by its card) and lets the serving pipeline batch the
arithmetic (``gantry.core.preprocess.normalise``). The output is the raw 128-d descriptor,
*not* unit length: dlib compares Euclidean distances of raw descriptors (match below 0.6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

DESCRIPTOR_DIM = 128


class ChannelAffine(nn.Module):
    """Per-channel ``x * weight + bias``: dlib's ``affine_`` layer in conv mode.

    dlib trains with batch norm and replaces it by this fixed affine map for inference, so
    the released weights hold only a scale and a shift per channel.

    Args:
        channels: number of channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale and shift each channel of ``x`` (N, C, H, W)."""
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` where the smaller operand is zero-padded, top-left aligned, per dimension.

    This is dlib's ``add_prev_`` semantics for inputs of different shape: in a stride-2 block
    the branch has more channels than the pooled shortcut, and on even sizes (8 → 3 vs 4,
    4 → 1 vs 2) a smaller spatial size, because dlib's stride-2 3x3 convolution has no
    padding while the 2x2 average pool loses less. Cropping the larger input instead would
    be the obvious alternative, and is wrong (cosine ≈ 0.7 to dlib's descriptors).

    The shape comparisons are Python-level: an ONNX trace records them as constants (with a
    TracerWarning), which is right because the network's input size is fixed; only the batch
    dimension stays dynamic.

    Args:
        a: (N, C1, H1, W1).
        b: (N, C2, H2, W2), same N.

    Returns:
        (N, max C, max H, max W).
    """
    if a.shape[1:] == b.shape[1:]:
        return a + b
    channels = max(a.shape[1], b.shape[1])
    height = max(a.shape[2], b.shape[2])
    width = max(a.shape[3], b.shape[3])

    def grow(t: torch.Tensor) -> torch.Tensor:
        # F.pad lists (left, right) pairs from the last dim backwards; padding only at the
        # end of each dim keeps the original values top-left (and channel-first) aligned.
        pads = (0, width - t.shape[3], 0, height - t.shape[2], 0, channels - t.shape[1])
        return F.pad(t, pads) if any(pads) else t

    return grow(a) + grow(b)


class Stem(nn.Module):
    """7x7/2 convolution (no padding), affine, ReLU, 3x3/2 max pool: 150 → 72 → 35 px."""

    def __init__(self, out_channels: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, out_channels, 7, stride=2, padding=0)
        self.affine = ChannelAffine(out_channels)
        self.pool = nn.MaxPool2d(3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stem features of a normalised chip."""
        return self.pool(F.relu(self.affine(self.conv(x))))


class ResidualBlock(nn.Module):
    """dlib's ``ares`` (stride 1) or ``ares_down`` (stride 2) block.

    Branch: conv3x3(stride) → affine → ReLU → conv3x3 → affine. Shortcut: the input, or for
    ``ares_down`` a 2x2/2 average pool of it. The two are added with zero padding (see
    :func:`add_zero_padded`), then a ReLU.

    dlib's convolutions pad by 1 at stride 1 and not at all at stride 2 (``con<N,3,3,2,2>``
    defaults its padding to 0 when the stride is not 1); the pooling likewise.

    Args:
        in_channels: input channels.
        out_channels: branch channels.
        downsample: stride-2 block with a pooled shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        if not downsample and in_channels != out_channels:
            raise ValueError("a stride-1 block keeps its channel count")
        stride = 2 if downsample else 1
        self.downsample = downsample
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=0 if downsample else 1
        )
        self.affine1 = ChannelAffine(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.affine2 = ChannelAffine(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One residual block."""
        branch = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, stride=2) if self.downsample else x
        return F.relu(add_zero_padded(branch, shortcut))


class Stage(nn.Module):
    """A run of residual blocks at one width; the first downsamples unless ``downsample`` is off.

    Args:
        in_channels: channels entering the stage.
        channels: channels of every block.
        num_blocks: number of blocks.
        downsample: whether the first block is a stride-2 ``ares_down``.
    """

    def __init__(self, in_channels: int, channels: int, num_blocks: int, downsample: bool) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                ResidualBlock(in_channels if i == 0 else channels, channels, downsample and i == 0)
                for i in range(num_blocks)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        return self.blocks(x)


class DlibResNet(nn.Module):
    """dlib's ResNet-29 face descriptor.

    Input: (N, 3, 150, 150) RGB chips normalised as ``(rgb - mean) / 256``, rgb in
    [0, 255] (see the module docstring; :func:`normalize_chips`). The chips must be cut the
    way dlib cuts them (``dlib.get_face_chip(img, shape, 150, 0.25)``, or a similarity warp
    onto the card's landmark template); other sizes run but are not what the weights know.

    Output: (N, 128) raw descriptors, not normalised.

    Args:
        widths: channels of the five stages.
        depths: blocks per stage.
        embedding_dim: descriptor size.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256, 256),
        depths: tuple[int, ...] = (3, 4, 3, 3, 1),
        embedding_dim: int = DESCRIPTOR_DIM,
    ) -> None:
        super().__init__()
        if len(widths) != len(depths):
            raise ValueError("widths and depths must have the same length")
        self.stem = Stem(widths[0])
        stages: list[Stage] = []
        in_channels = widths[0]
        for index, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            # The first stage works at the stem's resolution; every later one halves it.
            stages.append(Stage(in_channels, width, depth, downsample=index > 0))
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(in_channels, embedding_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Descriptors of normalised chips: (N, 3, 150, 150) → (N, 128)."""
        feat = self.stem(x)
        for stage in self.stages:
            feat = stage(feat)
        # avg_pool_everything: the mean over whatever spatial size is left (2x2 at 150 px).
        return self.fc(feat.mean(dim=(2, 3)))


@ARCHS.register()
def dlib_resnet_v1() -> DlibResNet:
    """dlib_face_recognition_resnet_model_v1: 150x150 RGB chip → 128-d descriptor."""
    return DlibResNet()
