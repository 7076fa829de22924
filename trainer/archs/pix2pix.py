"""pix2pix (Isola et al., CVPR 2017): U-Net generator and PatchGAN discriminator.

Parameter-compatible with junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``): the
``nn.Sequential`` positions are part of the contract, since the official ``latest_net_G.pth`` /
``latest_net_D.pth`` files are bare state_dicts addressed by them and load here with
``strict=True``. The layout, as upstream builds it:

* ``UnetGenerator``: ``model`` is the outermost ``UnetSkipConnectionBlock``; each block keeps
  one Sequential named ``model``, so the nesting shows in the keys:

  - outermost: ``[down conv, inner block, ReLU, up convT, Tanh]``: convs at ``model.model.0``
    and ``model.model.3`` (the outer up convT always has a bias), the next block at
    ``model.model.1``;
  - middle: ``[LeakyReLU, down conv, norm, inner block, ReLU, up convT, norm (, Dropout)]``:
    convs at ``.1`` and ``.5``, norms at ``.2`` and ``.6``, the next block at ``.3``;
  - innermost: ``[LeakyReLU, down conv, ReLU, up convT, norm]``: convs at ``.1`` and ``.3``,
    its only norm at ``.4`` (no norm on the 1x1 bottleneck).

  For ``unet_256`` (8 downsamplings) the innermost down conv is
  ``model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight``:
  ``model.1`` into the second block, then six ``model.3`` hops to the eighth.
* ``NLayerDiscriminator`` (PatchGAN): one ``model`` Sequential of 4x4 convs (padding 1)
  with LeakyReLU 0.2. ``n_layers=3``: convs at ``model.0``, ``.2``, ``.5``, ``.8``, ``.11``;
  norms at ``.3``, ``.6``, ``.9``; no sigmoid (the GAN loss works on logits).

Norms follow upstream's ``get_norm_layer``: ``batch`` is ``BatchNorm2d(affine=True)`` (running
statistics included in the state_dict); ``instance`` is ``InstanceNorm2d(affine=False,
track_running_stats=False)`` and holds nothing, but still takes its Sequential slot. A conv
followed by a BatchNorm has no bias (the norm's shift makes it redundant); with instance norm
it has one (upstream's ``use_bias = norm is InstanceNorm2d``).

Dropout "as noise": pix2pix has no z input; the U-Net's dropout (p=0.5, in the ``ngf * 8``
middle blocks only) is its only source of randomness. Upstream's ``test.py`` calls
``model.eval()`` only with ``--eval``, so by default its results keep dropout on and normalise
with the test batch's own BatchNorm statistics, as the paper describes. We export and serve in
``eval()`` mode (dropout off, running statistics): deterministic, and the same function in
PyTorch, ONNX Runtime and Triton, at the cost of not matching upstream's default test.py pixel
for pixel.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.sizes import check_input_size

Norm = Literal["batch", "instance"]

RGB = 3
# pix2pix's conditional D sees the input image and the (real or generated) output, stacked.
PIX2PIX_D_INPUT_NC = RGB + RGB

# Fixed by the published architectures, not tunable: the released weights were trained so.
LRELU_SLOPE = 0.2
DROPOUT_P = 0.5
INIT_GAIN = 0.02  # upstream's --init_gain for --init_type normal
# The U-Net's five fixed stages: outermost, ngf->2ngf, 2ngf->4ngf, 4ngf->8ngf, innermost; the
# rest of num_downs are ngf*8 middle blocks (the ones that carry dropout).
UNET_FIXED_STAGES = 5
_D_KERNEL = 4
_D_PAD = 1
_D_MAX_MULT = 8


def norm_layer(kind: Norm, channels: int, *, affine: bool | None = None) -> nn.Module:
    """Upstream's ``get_norm_layer``: BatchNorm with affine, InstanceNorm without.

    Args:
        kind: ``"batch"`` or ``"instance"``.
        channels: feature channels.
        affine: override the learnable scale/shift (default: upstream's choice for ``kind``).
            Only forks need it, e.g. vintagify's CycleGAN (affine InstanceNorm).

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True if affine is None else affine)
    if kind == "instance":
        return nn.InstanceNorm2d(
            channels, affine=False if affine is None else affine, track_running_stats=False
        )
    raise ValueError(f"unknown norm {kind!r}; expected 'batch' or 'instance'")


def conv_bias(kind: Norm) -> bool:
    """Whether a conv followed by a ``kind`` norm has a bias: only before InstanceNorm."""
    return kind == "instance"


def init_normal_(module: nn.Module, gain: float = INIT_GAIN) -> None:
    """Upstream's ``init_weights(init_type='normal')``.

    Conv and linear weights ~ N(0, gain) with zero bias; BatchNorm weights ~ N(1, gain) with
    zero bias. Affine InstanceNorms keep PyTorch's ones/zeros, as upstream's class-name match
    (``'BatchNorm2d'``) skips them.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``cat([x, up(inner(down(x)))])``, or just the path when outermost.

    Each level halves H and W with a 4x4 stride-2 conv and restores them with a 4x4 stride-2
    transposed conv; the skip concatenation doubles the channels the level above sees, which
    is why every up convT but the innermost takes ``inner_nc * 2``.

    Args:
        outer_nc: channels of this level's output (before the skip concatenation).
        inner_nc: channels of the downsampled map handed to ``submodule``.
        input_nc: channels of this level's input (default ``outer_nc``; the network input for
            the outermost level).
        submodule: the next level down (None only for the innermost).
        outermost: no skip, no norm, Tanh at the end.
        innermost: no submodule, no norm on the bottleneck.
        norm: ``"batch"`` or ``"instance"``.
        use_dropout: Dropout(0.5) after the up path (middle levels only).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: UnetSkipConnectionBlock | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: Norm = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if outermost and innermost:
            raise ValueError("a block cannot be both outermost and innermost")
        if (submodule is None) != innermost:
            raise ValueError("exactly the innermost block has no submodule")
        self.outermost = outermost
        bias = conv_bias(norm)
        down_conv = nn.Conv2d(
            outer_nc if input_nc is None else input_nc,
            inner_nc,
            kernel_size=4,
            stride=2,
            padding=1,
            bias=bias,
        )
        layers: list[nn.Module]
        if outermost:
            assert submodule is not None  # checked above; narrows the type
            layers = [
                down_conv,
                submodule,
                nn.ReLU(True),
                # The output conv keeps its bias whatever the norm: nothing follows it but Tanh.
                nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1),
                nn.Tanh(),
            ]
        elif innermost:
            layers = [
                nn.LeakyReLU(LRELU_SLOPE, True),
                down_conv,
                nn.ReLU(True),
                nn.ConvTranspose2d(
                    inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
                ),
                norm_layer(norm, outer_nc),
            ]
        else:
            assert submodule is not None
            layers = [
                nn.LeakyReLU(LRELU_SLOPE, True),
                down_conv,
                norm_layer(norm, inner_nc),
                submodule,
                nn.ReLU(True),
                nn.ConvTranspose2d(
                    inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias
                ),
                norm_layer(norm, outer_nc),
            ]
            if use_dropout:
                layers.append(nn.Dropout(DROPOUT_P))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) → (N, C_in + outer_nc, H, W), or (N, outer_nc, H, W) outermost."""
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix's U-Net generator, built from the innermost level outwards.

    Args:
        input_nc: input channels.
        output_nc: output channels (RGB in [-1, 1] after Tanh).
        num_downs: stride-2 levels; 8 (``unet_256``) takes 256x256 down to 1x1, 7 (``unet_128``)
            128x128. At least 5 (the fixed stages).
        ngf: width of the outermost level; the widths double to ``ngf * 8`` and stay there.
        norm: ``"batch"`` (pix2pix's default) or ``"instance"``.
        use_dropout: Dropout(0.5) in the ``num_downs - 5`` middle ``ngf * 8`` levels (pix2pix's
            default; ``--no_dropout`` turns it off).
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm: Norm = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < UNET_FIXED_STAGES:
            raise ValueError(f"num_downs must be >= {UNET_FIXED_STAGES}, got {num_downs}")
        self.num_downs = num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - UNET_FIXED_STAGES):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )
        init_normal_(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this: every level halves exactly, then doubles back.

        A 4x4 stride-2 conv floors odd sizes, and the skip concatenation then misaligns.
        """
        return 2**self.num_downs

    @property
    def min_size(self) -> int:
        """Smallest H / W: the innermost conv needs a 2x2 map (it outputs 1x1)."""
        return self.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) → (N, output_nc, H, W) in [-1, 1]."""
        check_input_size(x, self.size_multiple, self.min_size, "UnetGenerator")
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The PatchGAN discriminator: one logit per overlapping input patch.

    ``n_layers`` stride-2 4x4 convs, then two stride-1 4x4 convs (the last to one channel).
    With ``n_layers=3`` each output sees a 70x70 input patch (the paper's "70x70 PatchGAN");
    for a 256x256 input the output is 30x30.

    Args:
        input_nc: input channels (pix2pix: input + output image, 6; CycleGAN: 3).
        ndf: width of the first conv; doubles per layer up to ``ndf * 8``.
        n_layers: stride-2 convs (``--n_layers_D``, 3 for ``--netD basic``).
        norm: ``"batch"`` (pix2pix) or ``"instance"`` (CycleGAN).
    """

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: Norm = "batch"
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = conv_bias(norm)
        # The first conv has no norm after it, so it keeps its bias whatever the norm.
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=_D_KERNEL, stride=2, padding=_D_PAD),
            nn.LeakyReLU(LRELU_SLOPE, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, _D_MAX_MULT)
            # The last of these is stride 1: it widens without shrinking the patch grid.
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(
                    ndf * prev,
                    ndf * mult,
                    kernel_size=_D_KERNEL,
                    stride=stride,
                    padding=_D_PAD,
                    bias=bias,
                ),
                norm_layer(norm, ndf * mult),
                nn.LeakyReLU(LRELU_SLOPE, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=_D_KERNEL, stride=1, padding=_D_PAD))
        self.model = nn.Sequential(*layers)
        init_normal_(self)

    @property
    def receptive_field(self) -> int:
        """Side of the input patch one output logit sees (70 for ``n_layers=3``)."""
        field = 1
        for conv in reversed([m for m in self.model if isinstance(m, nn.Conv2d)]):
            kernel, stride = conv.kernel_size[0], conv.stride[0]
            field = (field - 1) * stride + kernel
        return field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) → (N, 1, H', W') logits, one per patch."""
        return self.model(x)


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call, not by decorator: the decorator erases the return type
# to nn.Module, and the trainer needs the concrete classes (size_multiple, receptive_field).


def pix2pix_unet256(
    input_nc: int = RGB,
    output_nc: int = RGB,
    ngf: int = 64,
    norm: Norm = "batch",
    use_dropout: bool = True,
) -> UnetGenerator:
    """``--netG unet_256 --norm batch`` (facades default, dropout on, 54.41M). H, W: k * 256."""
    return UnetGenerator(input_nc, output_nc, 8, ngf, norm, use_dropout)


def pix2pix_unet128(
    input_nc: int = RGB,
    output_nc: int = RGB,
    ngf: int = 64,
    norm: Norm = "batch",
    use_dropout: bool = True,
) -> UnetGenerator:
    """``--netG unet_128``: 7 levels. H, W multiples of 128."""
    return UnetGenerator(input_nc, output_nc, 7, ngf, norm, use_dropout)


def pix2pix_unet_tiny(
    input_nc: int = RGB,
    output_nc: int = RGB,
    norm: Norm = "batch",
    use_dropout: bool = True,
) -> UnetGenerator:
    """A CPU-sized U-Net (ngf 16, 6 levels, 1.83M parameters). H, W multiples of 64."""
    return UnetGenerator(input_nc, output_nc, 6, ngf=16, norm=norm, use_dropout=use_dropout)


def patchgan70(
    input_nc: int = PIX2PIX_D_INPUT_NC, ndf: int = 64, norm: Norm = "batch"
) -> NLayerDiscriminator:
    """``--netD basic``: the 70x70 PatchGAN. pix2pix: 6 channels, batch norm (the defaults);
    CycleGAN: ``input_nc=3, norm="instance"``."""
    return NLayerDiscriminator(input_nc, ndf, n_layers=3, norm=norm)


def patchgan70_tiny(
    input_nc: int = PIX2PIX_D_INPUT_NC, norm: Norm = "batch"
) -> NLayerDiscriminator:
    """A CPU-sized 70x70 PatchGAN (ndf 16): same geometry, a sixteenth of the weights."""
    return NLayerDiscriminator(input_nc, ndf=16, n_layers=3, norm=norm)


ARCHS.register("pix2pix_unet256")(pix2pix_unet256)
ARCHS.register("pix2pix_unet128")(pix2pix_unet128)
ARCHS.register("pix2pix_unet_tiny")(pix2pix_unet_tiny)
ARCHS.register("patchgan70")(patchgan70)
ARCHS.register("patchgan70_tiny")(patchgan70_tiny)
