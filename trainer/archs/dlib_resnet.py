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

Normalisation contract: :class:`DlibResNet` takes RGB chips already normalised as
``(rgb - DLIB_MEAN_RGB) / DLIB_PIXEL_SCALE`` with ``rgb`` in [0, 255], i.e. a model card with
``value_range=(0, 255)``, ``mean=DLIB_MEAN_RGB``, ``std=(256, 256, 256)``, ``color_order="RGB"``.
Keeping the normalisation outside matches how every other served model is described (by its
card) and lets the gateway batch the arithmetic. :func:`normalize_chips` does it for callers
holding uint8 chips. The output is the raw 128-d descriptor, *not* unit length: dlib compares
Euclidean distances of raw descriptors (match below 0.6).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from trainer.archs import ARCHS

# The means stored in the .dat's input layer (float32 in dlib, printed to 3 decimals here;
# float32(122.782) is the stored value, so the rounding is exact).
DLIB_MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)
# input_rgb_image_sized divides by 256, not by a standard deviation.
DLIB_PIXEL_SCALE = 256.0
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25
DESCRIPTOR_DIM = 128
# dlib's own verification rule: same person iff the Euclidean distance of the raw
# descriptors is below this (also stored in the .dat's loss layer).
DLIB_DISTANCE_THRESHOLD = 0.6

# Where our detector's 5 landmarks land in dlib's 150x150 chip (x, y in pixels, origin at the
# top-left pixel centre, as cv2.warpAffine uses), in the order: left eye centre, right eye
# centre, nose tip, left mouth corner, right mouth corner ("left"/"right" as seen in the image).
#
# dlib cuts its chips from its own 5-point model (eye corners, nose base), which our detector
# does not produce, so the template is measured, not designed: trainer.weights.dlib
# .derive_dlib_template ran dlib's 68-point predictor on every face dlib's HOG detector (one
# upsampling) finds in /work/shared/data faces_verify, faces_detect/dlib_voc and landmarks
# (76 faces in 25 photos), took the eye centres (mean of points 36-41 / 42-47), the nose tip
# (30) and the mouth corners (48, 54), mapped them into the chip that
# dlib.get_face_chip_details(5-point shape, 150, 0.25) defines, and averaged.
# Spread across faces (std x, y in px): eyes (2.7, 1.8) and (1.8, 3.4), nose tip (8.2, 5.0),
# mouth corners (6.0, 6.9) and (6.6, 7.5); the nose and mouth move with pose and expression
# relative to the eye-corner/nose-base frame dlib aligns on, and the small VOC faces (30-50 px)
# add landmark noise.
# A similarity fit (Umeyama / cv2.estimateAffinePartial2D) of the 5 points onto this template,
# warped bilinearly, gives descriptors with cosine 0.990-0.998 (mean 0.994) to dlib's own chips
# on the faces_verify photos and changes no same/different decision there at dlib's 0.6.
DLIB_CHIP_TEMPLATE_5PT: tuple[tuple[float, float], ...] = (
    (47.07, 46.03),
    (99.79, 45.82),
    (71.76, 77.12),
    (49.57, 101.61),
    (99.69, 101.48),
)


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

    Input: (N, 3, 150, 150) RGB chips normalised as ``(rgb - DLIB_MEAN_RGB) / 256``, rgb in
    [0, 255] (see the module docstring; :func:`normalize_chips`). The chips must be cut the
    way dlib cuts them (``dlib.get_face_chip(img, shape, 150, 0.25)``, or a similarity warp
    onto :data:`DLIB_CHIP_TEMPLATE_5PT`); other sizes run but are not what the weights know.

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


def normalize_chips(chips: npt.NDArray[np.uint8] | torch.Tensor) -> torch.Tensor:
    """Turn RGB chips in [0, 255] into :class:`DlibResNet` input.

    Args:
        chips: (N, H, W, 3) uint8 numpy array (as dlib / PIL give them) or an (N, 3, H, W)
            tensor of any dtype holding 0-255 values.

    Returns:
        (N, 3, H, W) float32 ``(rgb - DLIB_MEAN_RGB) / 256``.
    """
    if isinstance(chips, np.ndarray):
        if chips.ndim != 4 or chips.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB chips, got {chips.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2)
    else:
        tensor = chips
    mean = torch.tensor(DLIB_MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)
    # float32 arithmetic in the same order as dlib's (p - mean) / 256 keeps the inputs
    # bit-identical to dlib's.
    return (tensor.to(torch.float32) - mean) / DLIB_PIXEL_SCALE


@ARCHS.register()
def dlib_resnet_v1() -> DlibResNet:
    """dlib_face_recognition_resnet_model_v1: 150x150 RGB chip → 128-d descriptor."""
    return DlibResNet()
