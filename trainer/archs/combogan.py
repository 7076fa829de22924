"""ComboGAN (Anoosheh et al., CVPR-W 2018): CycleGAN's ResNet generator cut in two.

Each domain has an encoder (stem, the two stride-2 downs, the first residual blocks) and a
decoder (the remaining residual blocks, the two transposed-conv ups, the head). Translating
domain i to domain j is ``decoder_j(encoder_i(x))``: with N domains that is 2N networks for
N(N-1) translations, where CycleGAN would need N(N-1) generators, and every encoder learns one
latent space every decoder reads. The halves are built from a
:class:`~trainer.archs.cyclegan.ResnetGenerator` (same layers, same init), so the composed pair
is a CycleGAN generator's exact shape.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.archs import ARCHS
from trainer.archs.cyclegan import N_DOWNSAMPLING, ResnetGenerator
from trainer.archs.pix2pix import RGB, Norm
from trainer.archs.sizes import check_input_size

# The stem's entries (pad, conv, norm, ReLU) and each down's (conv, norm, ReLU).
_STEM, _DOWN = 4, 3


def _halves(ngf: int, encoder_blocks: int, decoder_blocks: int, norm: Norm) -> list[nn.Module]:
    generator = ResnetGenerator(RGB, RGB, ngf, norm, n_blocks=encoder_blocks + decoder_blocks)
    return list(generator.model)


class ResnetEncoder(nn.Module):
    """A domain's encoder: (N, 3, H, W) → (N, 4·ngf, H/4, W/4) latent."""

    def __init__(self, ngf: int = 64, blocks: int = 5, norm: Norm = "instance") -> None:
        super().__init__()
        layers = _halves(ngf, blocks, 0, norm)
        self.model = nn.Sequential(*layers[: _STEM + _DOWN * N_DOWNSAMPLING + blocks])
        self.size_multiple = 2**N_DOWNSAMPLING

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.size_multiple, 2 * self.size_multiple, "ResnetEncoder")
        return self.model(x)


class ResnetDecoder(nn.Module):
    """A domain's decoder: the latent → (N, 3, H, W) in [-1, 1]."""

    def __init__(self, ngf: int = 64, blocks: int = 4, norm: Norm = "instance") -> None:
        super().__init__()
        layers = _halves(ngf, 0, blocks, norm)
        cut = _STEM + _DOWN * N_DOWNSAMPLING
        self.model = nn.Sequential(*layers[cut:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ComposedGenerator(nn.Module):
    """``decoder(encoder(x))``: one translation of a ComboGAN, as an exportable module."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def combogan_encoder(ngf: int = 64, norm: Norm = "instance") -> ResnetEncoder:
    """Full size: ngf 64 and 5 of a 9-block generator's residual blocks (our split)."""
    return ResnetEncoder(ngf, 5, norm)


def combogan_decoder(ngf: int = 64, norm: Norm = "instance") -> ResnetDecoder:
    """Full size: ngf 64 and the other 4 residual blocks."""
    return ResnetDecoder(ngf, 4, norm)


def combogan_encoder_tiny(norm: Norm = "instance") -> ResnetEncoder:
    """CPU size, the halves of ``cyclegan_resnet_tiny``: ngf 16, 2 blocks."""
    return ResnetEncoder(16, 2, norm)


def combogan_decoder_tiny(norm: Norm = "instance") -> ResnetDecoder:
    """CPU size: ngf 16, 1 block (with the encoder's 2: the tiny CycleGAN's 3)."""
    return ResnetDecoder(16, 1, norm)


ARCHS.register("combogan_encoder")(combogan_encoder)
ARCHS.register("combogan_decoder")(combogan_decoder)
ARCHS.register("combogan_encoder_tiny")(combogan_encoder_tiny)
ARCHS.register("combogan_decoder_tiny")(combogan_decoder_tiny)
