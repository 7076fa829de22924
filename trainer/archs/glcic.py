"""Globally and Locally Consistent Image Completion (Iizuka, Simo-Serra and Ishikawa,
SIGGRAPH 2017): the dilated-convolution completion network and the context discriminator
(a global and a local discriminator joined by one fully connected layer).

Layer names are otenim/GLCIC-PyTorch's (``models.py``), the PyTorch reimplementation whose
checkpoints users have (the authors released a Torch7 completion network only), so its
``model_cn`` / ``model_cd`` state_dicts load with ``strict=True`` at the paper's widths:

* :class:`CompletionNetwork` (the paper's Table 1): ``conv1`` 5x5 (4 → w), ``conv2`` 3x3
  stride 2 (→ 2w), ``conv3`` 3x3, ``conv4`` 3x3 stride 2 (→ 4w), ``conv5``, ``conv6`` 3x3,
  ``conv7`` .. ``conv10`` 3x3 dilated by 2, 4, 8 and 16, ``conv11``, ``conv12`` 3x3,
  ``deconv13`` 4x4 stride-2 transposed (→ 2w), ``conv14`` 3x3, ``deconv15`` 4x4 stride-2
  transposed (→ w), ``conv16`` 3x3 (→ w/2), ``conv17`` 3x3 (→ 3) and a sigmoid; ``bnK``
  (BatchNorm2d) after every conv but the last. The paper's w is 64; conv → BN → ReLU as the
  paper orders them (otenim applies BN after the ReLU; the keys and shapes are the same).
* :class:`ContextDiscriminator`: ``model_ld`` (5 convs 5x5 stride 2, w .. 8w, BN + ReLU,
  then ``linear6`` to 1024), ``model_gd`` (6 such convs, then ``linear7`` to 1024: the
  paper's and otenim's ``places2`` global discriminator), ``linear1`` (2048 → 1) on the two
  concatenated, and a sigmoid.

**Input.** The completion network takes (N, 4, H, W): RGB in [0, 1] and the binary mask
(1 = hole). As the paper prepares it, the hole's pixels are replaced by the training set's
mean pixel before the network sees them (``mean_pixel``, a constructor argument, not a
state_dict entry), so whatever the caller leaves in the hole does not matter. The output is
the network's full image in [0, 1]; the completed image is the input outside the hole and
this output inside it (:func:`composite`), which training, evaluation and serving all apply.

**Receptive field.** Two stride-2 levels and the four dilated convs give each output pixel a
view of about 300 px (the paper: 307 x 307), whatever the width: serving crops the hole's
bounding box grown by :data:`CONTEXT` pixels on each side, with H and W multiples of 4
(:data:`SIZE_MULTIPLE`: two stride-2 levels).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.sizes import check_input_size

WIDTH = 64  # the paper's first-layer width
DILATIONS = (2, 4, 8, 16)
SIZE_MULTIPLE = 4
# Half the receptive field, rounded up to the size multiple: the context on each side of a
# hole that a hole pixel's output can depend on (see receptive_field()).
CONTEXT = 156
FEATURES = 1024  # each discriminator's output (the paper's fc layers)
# The mean pixel of the 215 training photos of ../shared/data/train/natural_photos_sr (the
# held-aside ones excluded), RGB in [0, 1]: what the hole is filled with before G sees it.
NATURAL_PHOTOS_MEAN = (0.4583, 0.4614, 0.4339)


def composite(image: torch.Tensor, mask: torch.Tensor, completion: torch.Tensor) -> torch.Tensor:
    """The completed image: ``image`` outside the hole, ``completion`` inside (mask 1 = hole)."""
    return image * (1 - mask) + completion * mask


class CompletionNetwork(nn.Module):
    """The GLCIC completion network (see the module docstring for the layout and keys).

    Args:
        width: the first layer's channels; the network runs at width, 2x, 4x, 2x, width and
            width / 2 (the paper: 64).
        mean_pixel: RGB in [0, 1] that fills the hole before the first conv.
    """

    mean_pixel: torch.Tensor

    def __init__(
        self, width: int = WIDTH, mean_pixel: tuple[float, float, float] = NATURAL_PHOTOS_MEAN
    ) -> None:
        super().__init__()
        if width % 2:
            raise ValueError(f"width must be even (conv16 has width / 2 channels), got {width}")
        w1, w2, w4 = width, 2 * width, 4 * width
        self.register_buffer(
            "mean_pixel", torch.tensor(mean_pixel).view(1, 3, 1, 1), persistent=False
        )
        # (name, conv): every conv but conv17 is followed by bn<k> and a ReLU.
        layers: list[tuple[str, nn.Conv2d | nn.ConvTranspose2d]] = [
            ("conv1", nn.Conv2d(4, w1, 5, padding=2)),
            ("conv2", nn.Conv2d(w1, w2, 3, stride=2, padding=1)),
            ("conv3", nn.Conv2d(w2, w2, 3, padding=1)),
            ("conv4", nn.Conv2d(w2, w4, 3, stride=2, padding=1)),
            ("conv5", nn.Conv2d(w4, w4, 3, padding=1)),
            ("conv6", nn.Conv2d(w4, w4, 3, padding=1)),
        ]
        layers += [
            (f"conv{7 + i}", nn.Conv2d(w4, w4, 3, padding=d, dilation=d))
            for i, d in enumerate(DILATIONS)
        ]
        layers += [
            ("conv11", nn.Conv2d(w4, w4, 3, padding=1)),
            ("conv12", nn.Conv2d(w4, w4, 3, padding=1)),
            ("deconv13", nn.ConvTranspose2d(w4, w2, 4, stride=2, padding=1)),
            ("conv14", nn.Conv2d(w2, w2, 3, padding=1)),
            ("deconv15", nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1)),
            ("conv16", nn.Conv2d(w1, w1 // 2, 3, padding=1)),
        ]
        self.order: list[tuple[str, str]] = []
        for index, (name, conv) in enumerate(layers, start=1):
            self.add_module(name, conv)
            out = conv.out_channels
            self.add_module(f"bn{index}", nn.BatchNorm2d(out))
            self.order.append((name, f"bn{index}"))
        self.conv17 = nn.Conv2d(w1 // 2, 3, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 4, H, W) RGB in [0, 1] + mask → (N, 3, H, W) in [0, 1]; H, W multiples of 4."""
        check_input_size(x, SIZE_MULTIPLE, SIZE_MULTIPLE, "GLCIC completion network")
        image, mask = x[:, :3], x[:, 3:4]
        h = torch.cat([composite(image, mask, self.mean_pixel.to(image.dtype)), mask], dim=1)
        for conv, bn in self.order:
            h = self.act(getattr(self, bn)(getattr(self, conv)(h)))
        return torch.sigmoid(self.conv17(h))


def receptive_field() -> int:
    """The side (px) of the input window one output pixel of :class:`CompletionNetwork`
    depends on, from its kernels, strides and dilations (transposed convs as their
    equivalent stride-1 convs on the upsampled grid)."""
    field, jump = 1, 1.0
    downs = [(5, 1, 1), (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1)]
    downs += [(3, 1, d) for d in DILATIONS] + [(3, 1, 1), (3, 1, 1)]
    for kernel, stride, dilation in downs:
        field += (kernel - 1) * dilation * int(jump)
        jump *= stride
    for kernel, stride in ((4, 2), (3, 1), (4, 2), (3, 1), (3, 1)):
        jump /= stride
        field += math.ceil((kernel - 1) * jump)
    return field


def _conv_stack(channels: list[int], n: int) -> list[tuple[str, nn.Module]]:
    """``n`` 5x5 stride-2 convs (``conv1`` ..) with ``bn1`` .. and ReLUs, through ``channels``."""
    modules: list[tuple[str, nn.Module]] = []
    for i in range(n):
        modules.append((f"conv{i + 1}", nn.Conv2d(channels[i], channels[i + 1], 5, 2, 2)))
        modules.append((f"bn{i + 1}", nn.BatchNorm2d(channels[i + 1])))
        modules.append((f"act{i + 1}", nn.ReLU(inplace=True)))
    return modules


def _shrunk(size: int, convs: int) -> int:
    for _ in range(convs):
        size = (size + 1) // 2  # a 5x5 stride-2 conv with padding 2: ceil(n / 2)
    return size


class _Discriminator(nn.Module):
    """Convs then a fully connected layer to :data:`FEATURES` with a ReLU (the paper's local
    and global discriminators differ in the conv count and input size only)."""

    def __init__(self, size: int, width: int, convs: int, linear: str) -> None:
        super().__init__()
        channels = [3] + [width * min(2**i, 8) for i in range(convs)]
        for name, module in _conv_stack(channels, convs):
            self.add_module(name, module)
        self.convs = convs
        self.linear_name = linear
        side = _shrunk(size, convs)
        self.add_module(linear, nn.Linear(channels[-1] * side * side, FEATURES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.convs + 1):
            x = getattr(self, f"act{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return torch.relu(getattr(self, self.linear_name)(x.flatten(1)))


class LocalDiscriminator(_Discriminator):
    """Five convs on the patch around the hole, then ``linear6`` (otenim's keys)."""

    def __init__(self, size: int, width: int = WIDTH) -> None:
        super().__init__(size, width, convs=5, linear="linear6")


class GlobalDiscriminator(_Discriminator):
    """Six convs on the whole image, then ``linear7`` (otenim's ``places2`` keys)."""

    def __init__(self, size: int, width: int = WIDTH) -> None:
        super().__init__(size, width, convs=6, linear="linear7")


class ContextDiscriminator(nn.Module):
    """The local and the global discriminator, concatenated, then ``linear1`` to one logit.

    ``forward`` returns the logit (the paper's sigmoid is in the BCE loss, for stability).

    Args:
        global_size: side of the whole training image (the paper: 256).
        local_size: side of the patch around the hole (the paper: 128).
        width: the first conv's channels (the paper: 64; then 2x, 4x, 8x, 8x, 8x).
    """

    def __init__(self, global_size: int, local_size: int, width: int = WIDTH) -> None:
        super().__init__()
        self.model_ld = LocalDiscriminator(local_size, width)
        self.model_gd = GlobalDiscriminator(global_size, width)
        self.linear1 = nn.Linear(2 * FEATURES, 1)

    def forward(self, local: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
        """(N, 3, l, l) patches and (N, 3, g, g) images in [0, 1] → (N,) logits."""
        features = torch.cat([self.model_ld(local), self.model_gd(whole)], dim=1)
        logits: torch.Tensor = self.linear1(features)[:, 0]
        return logits


@ARCHS.register("glcic_completion")
def glcic_completion() -> CompletionNetwork:
    """The paper's completion network (width 64, 6.1M parameters)."""
    return CompletionNetwork(WIDTH)


@ARCHS.register("glcic_completion_tiny")
def glcic_completion_tiny() -> CompletionNetwork:
    """Width 16 (the paper: 64): the same 17 layers and dilations, sized for a CPU."""
    return CompletionNetwork(16)


@ARCHS.register("glcic_discriminator")
def glcic_discriminator(global_size: int = 256, local_size: int = 128) -> ContextDiscriminator:
    """The paper's context discriminator (width 64) for 256 px images and 128 px patches."""
    return ContextDiscriminator(global_size, local_size, WIDTH)


@ARCHS.register("glcic_discriminator_tiny")
def glcic_discriminator_tiny(global_size: int = 96, local_size: int = 48) -> ContextDiscriminator:
    """Width 16 (the paper: 64), for the shipped config's 96 px crops and 48 px patches."""
    return ContextDiscriminator(global_size, local_size, 16)
