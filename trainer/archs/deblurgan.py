"""DeblurGAN (Kupyn et al., CVPR 2018): the ResNet generator with the global skip, and the
WGAN-GP PatchGAN critic, parameter-compatible with KupynOrest/DeblurGAN.

KupynOrest/DeblurGAN's ``models/networks.py`` builds ``ResnetGenerator`` as junyanz's
(pix2pix/CycleGAN) one ``model`` Sequential, and its ``latest_net_G.pth`` is a bare state_dict
addressed by the positions. With the training defaults (``--which_model_netG resnet_9blocks
--norm instance``, dropout on since ``--no_dropout`` is not given, ``ngf 64``):

* ``model.0`` reflect-pad 3, ``model.1`` the 7x7 conv (3 → 64, bias), ``model.2`` norm, ReLU;
* two stride-2 3x3 convs at ``model.4`` (64 → 128) and ``model.7`` (128 → 256);
* nine ``ResnetBlock`` at ``model.10`` .. ``model.18``, each ``conv_block`` = reflect-pad,
  3x3 conv, norm, ReLU, Dropout(0.5), reflect-pad, 3x3 conv, norm: convs at
  ``conv_block.1`` and ``conv_block.6``;
* two stride-2 3x3 transposed convs (padding 1, output_padding 1) at ``model.19`` (256 →
  128) and ``model.22`` (128 → 64), then reflect-pad 3, the 7x7 output conv at ``model.26``
  (64 → 3) and Tanh.

Every conv has a bias (upstream's ``use_bias`` is true for instance norm) and the norms are
``InstanceNorm2d(affine=False)``, so they hold no keys but take their slots. That is the
layout of the 2018 code the paper's model was trained with: upstream's 2019 rewrite of
``ResnetBlock`` has an operator-precedence slip (``A + [Dropout] if use_dropout else [] + B``
keeps one conv per block with dropout on, only the second without), and its
``get_norm_layer`` adds ``track_running_stats=True`` (running-statistics buffers, used in
eval mode) to load checkpoints saved under PyTorch 0.3. We follow the 2018 blocks and
normalise each image by its own statistics in both modes.

**The global skip** (upstream's ``--learn_residual``, which its ``train.py`` turns on): the
network learns the residual, ``output = clamp(input + model(input), -1, 1)``, so an
untrained generator already returns (roughly) its blurred input.

The critic is the pix2pix ``NLayerDiscriminator`` (``--which_model_netD basic``, 3 layers,
instance norm, no sigmoid for ``--gan_type wgan-gp``) on the 3-channel image alone: convs at
``model.0``, ``.2``, ``.5``, ``.8``, ``.11`` (:class:`~trainer.archs.pix2pix.NLayerDiscriminator`).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.cyclegan import ResnetGenerator
from trainer.archs.pix2pix import RGB, NLayerDiscriminator

# DeblurGAN's defaults (options/base_options.py): 64 filters, 9 blocks, 3-layer critic.
NGF = 64
N_BLOCKS = 9
NDF = 64
CRITIC_LAYERS = 3


class DeblurGANGenerator(ResnetGenerator):
    """junyanz's ResNet generator with dropout in its blocks and DeblurGAN's global skip.

    Its state_dict is :class:`~trainer.archs.cyclegan.ResnetGenerator`'s (``model.*``); only
    ``forward`` differs: the output is the input plus the network's residual, clamped to
    [-1, 1] (upstream's ``learn_residual``).

    Args:
        ngf: width of the stem; the bottleneck runs at ``ngf * 4``.
        n_blocks: residual blocks (DeblurGAN: 9).
        use_dropout: Dropout(0.5) in each block (DeblurGAN: on).
    """

    def __init__(self, ngf: int = NGF, n_blocks: int = N_BLOCKS, use_dropout: bool = True) -> None:
        super().__init__(
            RGB, RGB, ngf=ngf, norm="instance", use_dropout=use_dropout, n_blocks=n_blocks
        )

    def zero_residual_(self) -> None:
        """Zero the output conv, so the network starts as the identity (its residual is
        ``tanh(0) = 0``); upstream initialises it N(0, 0.02) like every conv."""
        head = self.model[-2]
        assert isinstance(head, nn.Conv2d)
        nn.init.zeros_(head.weight)
        if head.bias is not None:
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) blurred, in [-1, 1] → (N, 3, H, W) restored, in [-1, 1].

        H and W must be multiples of 4 (at least 8): see ``size_multiple``.
        """
        # The tanh residual can push past the image range; upstream clamps, so do we.
        return torch.clamp(x + super().forward(x), -1.0, 1.0)


# --- registered variants -------------------------------------------------------------------
# Typed factories registered by call (the decorator would erase the return type).


def deblurgan_resnet9() -> DeblurGANGenerator:
    """DeblurGAN's generator as published (ngf 64, 9 blocks, dropout, 11.38M parameters)."""
    return DeblurGANGenerator(NGF, N_BLOCKS, use_dropout=True)


def deblurgan_tiny() -> DeblurGANGenerator:
    """A CPU-sized DeblurGAN generator: ngf 16, 3 blocks, dropout kept (0.27M parameters)."""
    return DeblurGANGenerator(ngf=16, n_blocks=3, use_dropout=True)


def deblurgan_critic() -> NLayerDiscriminator:
    """DeblurGAN's critic: the 70x70 PatchGAN on the image, instance norm, no sigmoid."""
    return NLayerDiscriminator(RGB, NDF, n_layers=CRITIC_LAYERS, norm="instance")


def deblurgan_critic_tiny() -> NLayerDiscriminator:
    """A CPU-sized critic (ndf 16): the same 70x70 geometry, a sixteenth of the weights."""
    return NLayerDiscriminator(RGB, ndf=16, n_layers=CRITIC_LAYERS, norm="instance")


ARCHS.register("deblurgan_resnet9")(deblurgan_resnet9)
ARCHS.register("deblurgan_tiny")(deblurgan_tiny)
ARCHS.register("deblurgan_critic")(deblurgan_critic)
ARCHS.register("deblurgan_critic_tiny")(deblurgan_critic_tiny)
