"""ComboGAN (Anoosheh et al., CVPR-W 2018): CycleGAN's losses on per-domain halves.

Each domain k has an encoder E_k and a decoder G_k (:mod:`trainer.archs.combogan`); the
translation A → B is ``G_b(E_a(x))`` and B → A is ``G_a(E_b(x))``. Everything else (LSGAN,
cycle losses both ways, identity, image pools, D per domain, the step order) is CycleGAN's,
so this recipe only changes how the two translators are built. With two domains the halves
are what CycleGAN's two generators split into; the design pays off from three domains on,
where each new domain adds one encoder, one decoder and one D, not a generator per pair
(this slice ships the two-domain black/blond hair config; the data of more hair colours is
in ``celeba_attr_subset``).
"""

from __future__ import annotations

from torch import nn

from gantry.core.training import ComboGANConfig
from trainer.archs import build_network
from trainer.archs.combogan import ComposedGenerator
from trainer.recipes import RECIPES
from trainer.recipes.cyclegan import CycleGANRecipe


@RECIPES.register("combogan")
class ComboGANRecipe(CycleGANRecipe):
    """Per-domain encoders and decoders, composed per translation; CycleGAN's training."""

    config_type = ComboGANConfig

    def generators(self) -> tuple[nn.Module, nn.Module]:
        assert isinstance(self.config, ComboGANConfig)
        cfg = self.config
        encoder_a, encoder_b = build_network(cfg.encoder), build_network(cfg.encoder)
        decoder_a, decoder_b = build_network(cfg.decoder), build_network(cfg.decoder)
        return ComposedGenerator(encoder_a, decoder_b), ComposedGenerator(encoder_b, decoder_a)

    def generator_architecture(self) -> str:
        assert isinstance(self.config, ComboGANConfig)
        return f"{self.config.encoder}+{self.config.decoder}"
