"""pix2pixHD (Wang et al., CVPR 2018), parameter-compatible with NVIDIA/pix2pixHD.

The attribute names and ``nn.Sequential`` positions are part of the contract: NVIDIA's
``latest_net_{G,D,E}.pth`` files are plain state_dicts addressed by them, so they load here with
``strict=True``. The layout, as NVIDIA's ``models/networks.py`` builds it:

* ``GlobalGenerator`` (G1): one ``model`` Sequential. Reflect-pad 3 + 7x7 conv at ``model.1``,
  ``n_downsampling`` stride-2 convs at ``model.4``, ``model.7``, ... (each conv, norm, ReLU),
  ``n_blocks`` residual blocks (``model.{k}.conv_block.{1,5}``: pad, conv, norm, ReLU, pad,
  conv, norm), as many transposed convs, then pad, 7x7 conv, Tanh.
* ``LocalEnhancer`` (G1 + G2): ``model`` is G1 at twice the width without its last three
  entries (pad, conv, Tanh); ``model1_1`` is G2's front end (pad, 7x7 conv, norm, ReLU,
  stride-2 conv, norm, ReLU: convs at ``model1_1.1`` and ``model1_1.4``); ``model1_2`` holds
  G2's residual blocks, one transposed conv and the output head.
* ``Encoder`` (E): one ``model`` Sequential shaped like G1 without residual blocks.
* ``MultiscaleDiscriminator``: with ``get_interm_feat=False`` each scale is one Sequential
  named ``layer{i}`` (convs at ``layer{i}.0``, ``.2``, ``.5``, ``.8``, ``.11`` for
  ``n_layers=3``); with ``get_interm_feat=True`` (what pix2pixHD trains with, since feature
  matching is on by default) each scale is split into ``n_layers + 2`` Sequentials named
  ``scale{i}_layer{j}`` (conv always at ``.0``). There is no ``scale{i}.model`` prefix in
  either layout.

With the default ``--norm instance`` the norm layers are ``InstanceNorm2d(affine=False)``:
they hold no parameters, but they still take their index in the Sequentials.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.sizes import check_input_size

Norm = Literal["instance", "batch"]

# Cityscapes, the dataset of NVIDIA's released label2city checkpoints: 35 label ids
# (--label_nc default) plus the instance boundary channel.
CITYSCAPES_LABEL_NC = 35
CITYSCAPES_INPUT_NC = CITYSCAPES_LABEL_NC + 1
RGB = 3

# The tiny facade model: 12 CMP classes (PNG values 1..12 mapped to 0..11, see
# gantry.labelmaps), one boundary channel, three encoder feature channels (pix2pixHD's
# --feat_num default).
FACADES_N_CLASSES = 12
FACADES_FEAT_NUM = 3
FACADES_INPUT_NC = FACADES_N_CLASSES + 1 + FACADES_FEAT_NUM
# The discriminator sees the label channels (one-hot + boundary, never the features) and an
# image, as pix2pixHD's ``discriminate`` does.
FACADES_D_INPUT_NC = FACADES_N_CLASSES + 1 + RGB

# NLayerDiscriminator's fixed geometry: 4x4 kernels, padding ceil((4 - 1) / 2) = 2, and
# LeakyReLU 0.2; the width doubles per layer up to 512.
_D_KERNEL = 4
_D_PAD = math.ceil((_D_KERNEL - 1) / 2)
_D_SLOPE = 0.2
_D_MAX_WIDTH = 512


def _norm(kind: Norm, channels: int) -> nn.Module:
    """pix2pixHD's ``get_norm_layer``.

    ``instance`` is affine-free and keeps no running statistics, so it adds no state_dict keys;
    ``batch`` (``--norm batch``) adds the usual BatchNorm parameters and buffers.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {kind!r}; expected 'instance' or 'batch'")


def _stem(in_ch: int, out_ch: int, norm: Norm) -> list[nn.Module]:
    """Reflect-pad 3, 7x7 conv, norm, ReLU: four Sequential slots, conv at offset 1."""
    return [
        nn.ReflectionPad2d(3),
        nn.Conv2d(in_ch, out_ch, kernel_size=7, padding=0),
        _norm(norm, out_ch),
        nn.ReLU(inplace=True),
    ]


def _down(in_ch: int, out_ch: int, norm: Norm) -> list[nn.Module]:
    """Stride-2 3x3 conv, norm, ReLU: halves H and W (rounding up)."""
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=2, padding=1),
        _norm(norm, out_ch),
        nn.ReLU(inplace=True),
    ]


def _up(in_ch: int, out_ch: int, norm: Norm) -> list[nn.Module]:
    """Stride-2 3x3 transposed conv (output_padding 1), norm, ReLU: exactly doubles H and W."""
    return [
        nn.ConvTranspose2d(in_ch, out_ch, kernel_size=3, stride=2, padding=1, output_padding=1),
        _norm(norm, out_ch),
        nn.ReLU(inplace=True),
    ]


def _head(in_ch: int, out_ch: int) -> list[nn.Module]:
    """Reflect-pad 3, 7x7 conv, Tanh: the image (or feature) output in [-1, 1]."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, kernel_size=7, padding=0), nn.Tanh()]


def _init_nvidia_(module: nn.Module) -> None:
    """pix2pixHD's ``weights_init``: conv weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02).

    Biases keep PyTorch's default init, as upstream leaves them alone.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ResnetBlock(nn.Module):
    """Residual block with reflection padding: ``x + conv_block(x)``.

    Keys: ``conv_block.1.*`` and ``conv_block.5.*`` (the two 3x3 convs).

    Args:
        dim: channels in and out.
        norm: normalisation layer kind.
    """

    def __init__(self, dim: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0),
            _norm(norm, dim),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0),
            _norm(norm, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual add around the two convs."""
        return x + self.conv_block(x)


def _global_layers(
    input_nc: int,
    output_nc: int,
    ngf: int,
    n_downsampling: int,
    n_blocks: int,
    norm: Norm,
) -> list[nn.Module]:
    """The GlobalGenerator's Sequential, head included, in NVIDIA's order."""
    if n_downsampling < 0 or n_blocks < 0:
        raise ValueError("n_downsampling and n_blocks must be >= 0")
    layers = _stem(input_nc, ngf, norm)
    for i in range(n_downsampling):
        layers += _down(ngf * 2**i, ngf * 2 ** (i + 1), norm)
    bottleneck = ngf * 2**n_downsampling
    layers += [ResnetBlock(bottleneck, norm) for _ in range(n_blocks)]
    for i in range(n_downsampling, 0, -1):
        layers += _up(ngf * 2**i, ngf * 2 ** (i - 1), norm)
    return layers + _head(ngf, output_nc)


class GlobalGenerator(nn.Module):
    """pix2pixHD's G1: a ResNet encoder-decoder on the label map.

    Args:
        input_nc: input channels (labels + boundary + features).
        output_nc: output channels (3: RGB in [-1, 1]).
        ngf: width of the first conv; doubles at each downsampling.
        n_downsampling: stride-2 stages (NVIDIA's class default 3; its command-line default,
            which the released checkpoints use, is 4).
        n_blocks: residual blocks at the bottleneck.
        norm: ``"instance"`` (pix2pixHD's default) or ``"batch"``.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int = RGB,
        ngf: int = 64,
        n_downsampling: int = 3,
        n_blocks: int = 9,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *_global_layers(input_nc, output_nc, ngf, n_downsampling, n_blocks, norm)
        )
        self.n_downsampling = n_downsampling
        self.has_blocks = n_blocks > 0
        _init_nvidia_(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this so the up path lands on the input size."""
        return 2**self.n_downsampling

    @property
    def min_size(self) -> int:
        """Smallest H / W: the residual blocks reflect-pad by 1, so the bottleneck needs 2 px."""
        return self.size_multiple * (2 if self.has_blocks else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) → (N, output_nc, H, W) in [-1, 1]."""
        check_input_size(x, self.size_multiple, self.min_size, "GlobalGenerator")
        return self.model(x)


class LocalEnhancer(nn.Module):
    """pix2pixHD's coarse-to-fine generator: G1 at half resolution, refined by G2.

    G2's front end (``model{n}_1``) runs on the full-resolution input; its feature map is added
    to G1's last feature map, and ``model{n}_2`` (residual blocks, x2 upsampling, head) turns
    the sum into the image. Each extra enhancer doubles the resolution again.

    Args:
        input_nc: input channels.
        output_nc: output channels.
        ngf: width of the outermost enhancer; G1 runs at ``ngf * 2**n_local_enhancers``.
        n_downsample_global: G1's stride-2 stages.
        n_blocks_global: G1's residual blocks.
        n_local_enhancers: number of G2 stages (1 in the paper).
        n_blocks_local: residual blocks per G2 stage.
        norm: ``"instance"`` or ``"batch"``.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int = RGB,
        ngf: int = 32,
        n_downsample_global: int = 3,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError("a LocalEnhancer needs at least one local enhancer")
        self.n_local_enhancers = n_local_enhancers
        self.n_downsample_global = n_downsample_global
        self.has_global_blocks = n_blocks_global > 0
        ngf_global = ngf * 2**n_local_enhancers
        g1 = _global_layers(
            input_nc, output_nc, ngf_global, n_downsample_global, n_blocks_global, norm
        )
        # G1 hands over its last feature map: its three head entries are dropped, which is
        # also why the keys stop at the last transposed conv's norm/ReLU.
        self.model = nn.Sequential(*g1[:-3])
        for n in range(1, n_local_enhancers + 1):
            width = ngf * 2 ** (n_local_enhancers - n)
            front = _stem(input_nc, width, norm) + _down(width, width * 2, norm)
            back: list[nn.Module] = [ResnetBlock(width * 2, norm) for _ in range(n_blocks_local)]
            back += _up(width * 2, width, norm)
            if n == n_local_enhancers:
                back += _head(ngf, output_nc)
            self.add_module(f"model{n}_1", nn.Sequential(*front))
            self.add_module(f"model{n}_2", nn.Sequential(*back))
        # 3x3 average with stride 2, borders averaged over real pixels only: the input pyramid.
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)
        _init_nvidia_(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this: each enhancer halves, then G1 halves again.

        G1's output must match G2's front-end map exactly for the sum, which only holds when
        no stride-2 stage has to round.
        """
        return 2 ** (self.n_downsample_global + self.n_local_enhancers)

    @property
    def min_size(self) -> int:
        """Smallest H / W: G1's residual blocks reflect-pad its bottleneck by 1 (needs 2 px)."""
        return self.size_multiple * (2 if self.has_global_blocks else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, input_nc, H, W) → (N, output_nc, H, W) in [-1, 1]."""
        check_input_size(x, self.size_multiple, self.min_size, "LocalEnhancer")
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            front = self.get_submodule(f"model{n}_1")
            back = self.get_submodule(f"model{n}_2")
            out = back(front(pyramid[self.n_local_enhancers - n]) + out)
        return out


def instance_average(features: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's features with the mean over its instance (per image, per channel).

    This is the pooling of pix2pixHD's ``Encoder.forward``, done with one ``index_add_`` over
    (image, instance) groups instead of a Python loop over ids, so it costs the same for 3 or
    300 instances. Gradients flow to ``features`` through the means, as upstream's do.

    Args:
        features: (N, C, H, W).
        inst: (N, 1, H, W) or (N, H, W) instance ids (any integer or integral float dtype).

    Returns:
        (N, C, H, W), constant over each instance of each image.
    """
    n, c, h, w = features.shape
    if inst.shape[0] != n or inst.shape[-2:] != features.shape[-2:] or inst.numel() != n * h * w:
        raise ValueError(f"instance map {tuple(inst.shape)} does not fit {tuple(features.shape)}")
    ids = inst.reshape(n, h * w)
    # Dense group numbers: instance ids can be sparse (Cityscapes uses 26001, ...), and the
    # same id in two images is two groups.
    _, dense = torch.unique(ids.long(), return_inverse=True)
    n_ids = int(dense.max()) + 1
    group = (dense + torch.arange(n, device=dense.device)[:, None] * n_ids).reshape(-1)
    flat = features.permute(1, 0, 2, 3).reshape(c, n * h * w)
    sums = flat.new_zeros(c, n * n_ids).index_add_(1, group, flat)
    counts = flat.new_zeros(n * n_ids).index_add_(0, group, flat.new_ones(n * h * w))
    means = sums / counts.clamp_min(1.0)
    return means[:, group].reshape(c, n, h, w).permute(1, 0, 2, 3)


class Encoder(nn.Module):
    """pix2pixHD's feature encoder E with instance-wise average pooling.

    E maps the real image to ``output_nc`` feature channels; pooling makes them one vector per
    instance, which G consumes (training) or which is replaced by clustered / user-chosen
    vectors at inference to pick a style per object.

    Args:
        input_nc: image channels.
        output_nc: feature channels (pix2pixHD's ``--feat_num``, 3).
        ngf: width of the first conv (``--nef``, 16).
        n_downsampling: stride-2 stages (``--n_downsample_E``, 4).
        norm: ``"instance"`` or ``"batch"``.
    """

    def __init__(
        self,
        input_nc: int = RGB,
        output_nc: int = 3,
        ngf: int = 16,
        n_downsampling: int = 4,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        self.output_nc = output_nc
        self.n_downsampling = n_downsampling
        # G1's layout without residual blocks.
        self.model = nn.Sequential(
            *_global_layers(input_nc, output_nc, ngf, n_downsampling, 0, norm)
        )
        _init_nvidia_(self)

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this for the features to cover the instance map."""
        return 2**self.n_downsampling

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Per-pixel features before pooling, (N, output_nc, H, W) in [-1, 1]."""
        check_input_size(image, self.size_multiple, self.size_multiple, "Encoder")
        return self.model(image)

    def forward(self, image: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        """Encode ``image`` (N, input_nc, H, W) and average over each instance of ``inst``."""
        return instance_average(self.features(image), inst)


def _patch_groups(
    input_nc: int, ndf: int, n_layers: int, norm: Norm, use_sigmoid: bool
) -> list[list[nn.Module]]:
    """NLayerDiscriminator's layers, grouped the way ``getIntermFeat`` splits them.

    Group 0: conv s2 + LeakyReLU; groups 1..n_layers-1: conv s2, norm, LeakyReLU; group
    n_layers: conv s1, norm, LeakyReLU; group n_layers+1: the 1-channel conv s1 (+ Sigmoid).
    """
    groups: list[list[nn.Module]] = [
        [
            nn.Conv2d(input_nc, ndf, _D_KERNEL, stride=2, padding=_D_PAD),
            nn.LeakyReLU(_D_SLOPE, inplace=True),
        ]
    ]
    width = ndf
    for n in range(1, n_layers + 1):
        prev, width = width, min(width * 2, _D_MAX_WIDTH)
        stride = 2 if n < n_layers else 1
        groups.append(
            [
                nn.Conv2d(prev, width, _D_KERNEL, stride=stride, padding=_D_PAD),
                _norm(norm, width),
                nn.LeakyReLU(_D_SLOPE, inplace=True),
            ]
        )
    last: list[nn.Module] = [nn.Conv2d(width, 1, _D_KERNEL, stride=1, padding=_D_PAD)]
    if use_sigmoid:
        last.append(nn.Sigmoid())
    groups.append(last)
    return groups


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (70x70 receptive field for ``n_layers=3``).

    Keys: ``model.*`` (one Sequential), or ``model{j}.*`` with ``get_interm_feat``.

    Args:
        input_nc: channels in (label channels + image).
        ndf: width of the first conv.
        n_layers: stride-2 convs after the first.
        norm: ``"instance"`` or ``"batch"``.
        use_sigmoid: append a Sigmoid (pix2pixHD's ``--no_lsgan``).
        get_interm_feat: return every group's output (for feature matching).
    """

    def __init__(
        self,
        input_nc: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Norm = "instance",
        use_sigmoid: bool = False,
        get_interm_feat: bool = False,
    ) -> None:
        super().__init__()
        self.get_interm_feat = get_interm_feat
        groups = _patch_groups(input_nc, ndf, n_layers, norm, use_sigmoid)
        self.n_groups = len(groups)
        if get_interm_feat:
            for j, group in enumerate(groups):
                self.add_module(f"model{j}", nn.Sequential(*group))
        else:
            self.model = nn.Sequential(*(m for group in groups for m in group))
        _init_nvidia_(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every group's output with ``get_interm_feat``, else ``[patch scores]``."""
        if not self.get_interm_feat:
            return [self.model(x)]
        outs = []
        for j in range(self.n_groups):
            x = self.get_submodule(f"model{j}")(x)
            outs.append(x)
        return outs


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on an image pyramid (each level a 3x3/2 average-pool of the last).

    Upstream quirk kept for checkpoint compatibility: the full-resolution input goes to the
    *highest*-numbered scale (``layer{num_D-1}`` / ``scale{num_D-1}_layer*``) and the coarsest
    to scale 0. The returned list is ordered fine to coarse.

    Args:
        input_nc: channels in.
        ndf: width of each PatchGAN's first conv.
        n_layers: layers per PatchGAN.
        num_D: scales (class default 3; pix2pixHD's training default ``--num_D`` is 2).
        norm: ``"instance"`` or ``"batch"``.
        use_sigmoid: Sigmoid outputs (``--no_lsgan``); False for LSGAN.
        get_interm_feat: keep every layer's output for feature matching, which also changes
            the key layout (``scale{i}_layer{j}`` instead of ``layer{i}``).
    """

    def __init__(
        self,
        input_nc: int,
        ndf: int = 64,
        n_layers: int = 3,
        num_D: int = 3,  # noqa: N803 - upstream's option name
        norm: Norm = "instance",
        use_sigmoid: bool = False,
        get_interm_feat: bool = False,
    ) -> None:
        super().__init__()
        self.num_D = num_D
        self.n_layers = n_layers
        self.get_interm_feat = get_interm_feat
        for i in range(num_D):
            groups = _patch_groups(input_nc, ndf, n_layers, norm, use_sigmoid)
            if get_interm_feat:
                for j, group in enumerate(groups):
                    self.add_module(f"scale{i}_layer{j}", nn.Sequential(*group))
            else:
                self.add_module(f"layer{i}", nn.Sequential(*(m for g in groups for m in g)))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)
        _init_nvidia_(self)

    def _scale(self, index: int, x: torch.Tensor) -> list[torch.Tensor]:
        if not self.get_interm_feat:
            return [self.get_submodule(f"layer{index}")(x)]
        outs = []
        for j in range(self.n_layers + 2):
            x = self.get_submodule(f"scale{index}_layer{j}")(x)
            outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale (fine to coarse): the intermediate maps then the patch scores (last)."""
        results = []
        for i in range(self.num_D):
            results.append(self._scale(self.num_D - 1 - i, x))
            if i != self.num_D - 1:
                x = self.downsample(x)
        return results


# --- registered variants -------------------------------------------------------------------
# NVIDIA's *command-line* defaults, which its released label2city checkpoints were trained
# with, differ from the class defaults: --n_downsample_global is 4 (class: 3) and --num_D is 2
# (class: 3). The variants follow the command line so ``latest_net_*.pth`` load unchanged.


@ARCHS.register()
def pix2pixhd_global(
    input_nc: int = CITYSCAPES_INPUT_NC,
    output_nc: int = RGB,
    ngf: int = 64,
    n_downsampling: int = 4,
    n_blocks: int = 9,
    norm: Norm = "instance",
) -> GlobalGenerator:
    """``--netG global`` (label2city_512p): G1 alone. H, W multiples of 16, at least 32."""
    return GlobalGenerator(input_nc, output_nc, ngf, n_downsampling, n_blocks, norm)


@ARCHS.register()
def pix2pixhd_local(
    input_nc: int = CITYSCAPES_INPUT_NC,
    output_nc: int = RGB,
    ngf: int = 32,
    n_downsample_global: int = 4,
    n_blocks_global: int = 9,
    n_local_enhancers: int = 1,
    n_blocks_local: int = 3,
    norm: Norm = "instance",
) -> LocalEnhancer:
    """``--netG local --ngf 32`` (label2city_1024p): G1 + G2. H, W multiples of 32, >= 64."""
    return LocalEnhancer(
        input_nc,
        output_nc,
        ngf,
        n_downsample_global,
        n_blocks_global,
        n_local_enhancers,
        n_blocks_local,
        norm,
    )


@ARCHS.register()
def pix2pixhd_encoder(
    input_nc: int = RGB,
    feat_num: int = 3,
    nef: int = 16,
    n_downsample_e: int = 4,
    norm: Norm = "instance",
) -> Encoder:
    """The feature encoder E with pix2pixHD's defaults (``--nef 16 --n_downsample_E 4``)."""
    return Encoder(input_nc, feat_num, nef, n_downsample_e, norm)


@ARCHS.register()
def pix2pixhd_discriminator(
    input_nc: int = CITYSCAPES_INPUT_NC + RGB,
    ndf: int = 64,
    n_layers: int = 3,
    num_d: int = 2,
    norm: Norm = "instance",
    get_interm_feat: bool = True,
) -> MultiscaleDiscriminator:
    """The multi-scale D as pix2pixHD trains it: 2 scales, feature matching on (LSGAN)."""
    return MultiscaleDiscriminator(
        input_nc, ndf, n_layers, num_d, norm, use_sigmoid=False, get_interm_feat=get_interm_feat
    )


# The tiny facade networks are typed factories registered by call rather than by decorator:
# the registry's decorator erases the return type to nn.Module, and the trainer needs the
# concrete classes.


def facades_tiny_generator() -> LocalEnhancer:
    """A CPU-sized LocalEnhancer for CMP facades: 16 input channels, H, W multiples of 8, >= 16.

    Input channels: 12 one-hot classes, 1 instance boundary, 3 instance features.
    """
    return LocalEnhancer(
        FACADES_INPUT_NC,
        RGB,
        ngf=8,
        n_downsample_global=2,
        n_blocks_global=2,
        n_local_enhancers=1,
        n_blocks_local=1,
    )


def facades_tiny_global() -> GlobalGenerator:
    """G1 of the tiny facade generator, with its head: what coarse-to-fine training trains
    first, at half resolution. Its ``model.{i}`` for every entry but the head's three are the
    LocalEnhancer's ``model.{i}`` (same widths: ngf 8 x 2)."""
    return GlobalGenerator(FACADES_INPUT_NC, RGB, ngf=16, n_downsampling=2, n_blocks=2)


def facades_tiny_encoder() -> Encoder:
    """The encoder trained with the tiny facade generator: 3 features, H, W multiples of 8."""
    return Encoder(RGB, FACADES_FEAT_NUM, ngf=8, n_downsampling=3)


def facades_tiny_discriminator() -> MultiscaleDiscriminator:
    """The discriminator the tiny facade generator is trained against (2 scales, ndf 16)."""
    return MultiscaleDiscriminator(
        FACADES_D_INPUT_NC, ndf=16, n_layers=3, num_D=2, get_interm_feat=True
    )


ARCHS.register("pix2pixhd_facades_tiny")(facades_tiny_generator)
ARCHS.register("pix2pixhd_facades_tiny_global")(facades_tiny_global)
ARCHS.register("pix2pixhd_facades_tiny_encoder")(facades_tiny_encoder)
ARCHS.register("pix2pixhd_facades_tiny_discriminator")(facades_tiny_discriminator)
