"""CycleGAN (Zhu et al., ICCV 2017): the ResNet generator, parameter-compatible with junyanz.

junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``) builds ``ResnetGenerator`` as
one ``model`` Sequential, and its ``latest_net_G_A.pth`` / ``latest_net_G_B.pth`` (or
``latest_net_G.pth`` from ``--model test``) are bare state_dicts addressed by the positions:

* ``model.0`` reflect-pad 3, ``model.1`` 7x7 conv, ``model.2`` norm, ``model.3`` ReLU;
* two stride-2 3x3 convs at ``model.4`` and ``model.7`` (norms at ``.5``, ``.8``);
* ``n_blocks`` ``ResnetBlock`` at ``model.10`` .. ``model.{9 + n_blocks}``, each
  ``conv_block`` = pad, 3x3 conv, norm, ReLU, (Dropout), pad, 3x3 conv, norm: convs at
  ``conv_block.1`` and ``conv_block.5`` (``conv_block.6`` with dropout);
* two stride-2 3x3 transposed convs (output_padding 1) and their norms, then reflect-pad 3,
  the 7x7 output conv and Tanh. With 9 blocks: convT at ``model.19``, ``model.22``, output
  conv at ``model.26``.

Convs carry a bias exactly when the norm is InstanceNorm (upstream's ``use_bias``); the output
conv always does. With the CycleGAN default ``--norm instance`` the norms are
``InstanceNorm2d(affine=False)``: no state_dict keys, but they take their slots.

Forks reuse the layout with other choices; the constructor's hyperparameters reproduce them
instead of copies of the class. vintagify's generator (``cyclegan_vintagify``) is this network
with affine InstanceNorms (``model.2.weight`` / ``.bias`` etc. exist) and its residual
Sequential named ``block`` rather than ``conv_block``; :mod:`trainer.weights.vintagify` renames.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.pix2pix import RGB, Norm, conv_bias, init_normal_, norm_layer
from trainer.archs.sizes import check_input_size

Padding = Literal["reflect", "replicate", "zero"]

# Fixed by the published architecture: two stride-2 stages each way.
N_DOWNSAMPLING = 2
DROPOUT_P = 0.5


def _pad(kind: Padding, width: int) -> tuple[list[nn.Module], int]:
    """The padding layer for ``kind`` (none for ``zero``) and the conv's own padding.

    ``zero`` pads inside the conv, so it takes no Sequential slot and the indices after it
    shift, exactly as upstream's ``padding_type='zero'`` does.
    """
    if kind == "reflect":
        return [nn.ReflectionPad2d(width)], 0
    if kind == "replicate":
        return [nn.ReplicationPad2d(width)], 0
    if kind == "zero":
        return [], width
    raise ValueError(f"unknown padding {kind!r}; expected 'reflect', 'replicate' or 'zero'")


class ResnetBlock(nn.Module):
    """``x + conv_block(x)``: two 3x3 convs with norm, ReLU between them.

    Args:
        dim: channels in and out.
        padding: ``"reflect"`` (CycleGAN), ``"replicate"`` or ``"zero"``.
        norm: ``"instance"`` or ``"batch"``.
        use_dropout: Dropout(0.5) after the first ReLU.
        use_bias: conv biases (upstream: True exactly for instance norm).
        norm_affine: override the norms' learnable scale/shift (forks only).
    """

    def __init__(
        self,
        dim: int,
        padding: Padding = "reflect",
        norm: Norm = "instance",
        use_dropout: bool = False,
        use_bias: bool = True,
        norm_affine: bool | None = None,
    ) -> None:
        super().__init__()
        layers, p = _pad(padding, 1)
        layers += [
            nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias),
            norm_layer(norm, dim, affine=norm_affine),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(DROPOUT_P))
        second, p = _pad(padding, 1)
        layers += second
        layers += [
            nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias),
            norm_layer(norm, dim, affine=norm_affine),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual add around the two convs."""
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: 7x7 stem, two stride-2 downs, residual blocks, two ups, 7x7 head.

    Args:
        input_nc: input channels.
        output_nc: output channels (RGB in [-1, 1] after Tanh).
        ngf: width of the stem; the bottleneck runs at ``ngf * 4``.
        norm: ``"instance"`` (CycleGAN's default) or ``"batch"``.
        use_dropout: Dropout(0.5) in each residual block (CycleGAN: off, ``--no_dropout``).
        n_blocks: residual blocks (``resnet_9blocks``: 9, ``resnet_6blocks``: 6).
        padding: padding inside the residual blocks (the stem and head always reflect).
        norm_affine: override the norms' learnable scale/shift (forks only, e.g. vintagify).
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        norm: Norm = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        padding: Padding = "reflect",
        norm_affine: bool | None = None,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=bias),
            norm_layer(norm, ngf, affine=norm_affine),
            nn.ReLU(True),
        ]
        for i in range(N_DOWNSAMPLING):
            width = ngf * 2**i
            layers += [
                nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=bias),
                norm_layer(norm, width * 2, affine=norm_affine),
                nn.ReLU(True),
            ]
        bottleneck = ngf * 2**N_DOWNSAMPLING
        layers += [
            ResnetBlock(bottleneck, padding, norm, use_dropout, bias, norm_affine)
            for _ in range(n_blocks)
        ]
        for i in range(N_DOWNSAMPLING, 0, -1):
            width = ngf * 2**i
            layers += [
                nn.ConvTranspose2d(
                    width,
                    width // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=bias,
                ),
                norm_layer(norm, width // 2, affine=norm_affine),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)
        self.reflects_bottleneck = n_blocks > 0 and padding == "reflect"
        init_normal_(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of 4, or the output is not the input's size.

        A stride-2 3x3 conv rounds odd sizes up and the transposed conv exactly doubles, so
        6 → 3 → 2 → 4 → 8. Upstream's data loader rounds images to multiples of 4 for this.
        """
        return 2**N_DOWNSAMPLING

    @property
    def min_size(self) -> int:
        """Smallest H / W: the blocks' reflect padding needs a 2x2 bottleneck."""
        return self.size_multiple * (2 if self.reflects_bottleneck else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) → (N, output_nc, H, W) in [-1, 1]."""
        check_input_size(x, self.size_multiple, self.min_size, "ResnetGenerator")
        return self.model(x)


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call (the decorator would erase the return type).


def cyclegan_resnet9(
    input_nc: int = RGB,
    output_nc: int = RGB,
    ngf: int = 64,
    norm: Norm = "instance",
    use_dropout: bool = False,
) -> ResnetGenerator:
    """``--netG resnet_9blocks --norm instance --no_dropout`` (CycleGAN's default, 11.38M)."""
    return ResnetGenerator(input_nc, output_nc, ngf, norm, use_dropout, n_blocks=9)


def cyclegan_resnet6(
    input_nc: int = RGB,
    output_nc: int = RGB,
    ngf: int = 64,
    norm: Norm = "instance",
    use_dropout: bool = False,
) -> ResnetGenerator:
    """``--netG resnet_6blocks``: the variant upstream suggests for 128x128 images."""
    return ResnetGenerator(input_nc, output_nc, ngf, norm, use_dropout, n_blocks=6)


def cyclegan_resnet_tiny(
    input_nc: int = RGB, output_nc: int = RGB, norm: Norm = "instance"
) -> ResnetGenerator:
    """A CPU-sized ResNet generator (ngf 16, 3 blocks, 0.27M parameters)."""
    return ResnetGenerator(input_nc, output_nc, ngf=16, norm=norm, n_blocks=3)


def cyclegan_vintagify() -> ResnetGenerator:
    """vintagify 0.1.2's modern → vintage generator: resnet_9blocks with affine InstanceNorm.

    Otherwise junyanz's layout exactly: biases on every conv, reflect padding, transposed-conv
    upsampling, 11,388,675 parameters (10,496 more than ``cyclegan_resnet9``: the norms'
    scales and shifts).
    """
    return ResnetGenerator(RGB, RGB, ngf=64, norm="instance", n_blocks=9, norm_affine=True)


ARCHS.register("cyclegan_resnet9")(cyclegan_resnet9)
ARCHS.register("cyclegan_resnet6")(cyclegan_resnet6)
ARCHS.register("cyclegan_resnet_tiny")(cyclegan_resnet_tiny)
ARCHS.register("cyclegan_vintagify")(cyclegan_vintagify)
