"""TP-GAN (Huang et al., ICCV 2017): frontal view synthesis by a global and four local
(landmark-patch) pathways.

Networks (:mod:`trainer.archs.tpgan`): the generator G (the four local pathways read patches
of the source around its eyes, nose and mouth; their frontal patches and features are pasted
at fixed frontal positions, fused by max with the global pathway's features) and a PatchGAN
D on frontal faces.

G's loss (the paper's terms; the weights relative to the pixel loss as in the paper, but for
the identity term, which here is 1 - cosine of MobileFaceNet-ArcFace features where the
paper takes an L1 of Light CNN features):

- ``lambda_pixel`` x the multi-scale L1 to the aligned truth (full, half, quarter size);
- ``lambda_local`` x the L1 of each local pathway's patch to the truth's patch at the same
  fixed box (:func:`~trainer.archs.tpgan.frontal_patches`);
- ``lambda_symmetry`` x the symmetry loss of the output, in pixels and in Laplacian space
  (the truth chips are aligned on a mirror-symmetric template);
- ``lambda_adv`` x the adversarial term, ``lambda_identity`` x the identity term and
  ``lambda_tv`` x total variation.

**Distributed runs are refused**: a step reads the local pathways' patches through
``forward_parts``, which DistributedDataParallel's wrapper does not sync (a 1.8M-parameter
network at 64 px trains in one process).
"""

from __future__ import annotations

import torch

from gantry.core.training import TPGANConfig
from trainer.archs import build_network
from trainer.archs.tpgan import TPGANGenerator, frontal_patches
from trainer.data import Sample
from trainer.losses import build_gan_loss, symmetry_loss
from trainer.recipes import RECIPES
from trainer.recipes.frontalization import FrontalizationRecipe, sample_batch, synthesis_terms


@RECIPES.register("tpgan")
class TPGANRecipe(FrontalizationRecipe):
    """Two-pathway generator against a PatchGAN, with TP-GAN's synthesis losses."""

    config_type = TPGANConfig
    config: TPGANConfig

    def build(self) -> None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise ValueError("tpgan trains in one process (see trainer.recipes.tpgan)")
        cfg = self.config
        self.build_data()
        generator = build_network(cfg.generator, size=cfg.data.size)
        if not isinstance(generator, TPGANGenerator):
            raise TypeError(f"tpgan needs a TP-GAN generator, not {cfg.generator}")
        discriminator = build_network(cfg.discriminator)
        self.add("generator", generator, self.adam(generator))
        self.add("discriminator", discriminator, self.adam(discriminator))
        self.gan_loss = build_gan_loss(cfg.gan_loss)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        image, points, target, _ = sample_batch(batch)
        generator = self.networks["generator"]
        assert isinstance(generator, TPGANGenerator)  # build refuses DDP
        with self.autocast():
            parts = generator.forward_parts(image, points)
        fake = parts["image"].float()

        with self.autocast():  # D: true frontal chips against G's (detached)
            d_loss = self.gan_loss.discriminator(
                self.networks["discriminator"](target).float(),
                self.networks["discriminator"](fake.detach()).float(),
            )
        self.optimize("discriminator", d_loss)

        self.set_requires_grad(False, "discriminator")
        with self.autocast():
            g_adv = self.gan_loss.generator(self.networks["discriminator"](fake).float())
        local = torch.stack(
            [
                (patch.float() - truth).abs().mean()
                for patch, truth in zip(parts["patches"], frontal_patches(target), strict=True)
            ]
        ).mean()
        symmetry = symmetry_loss(fake) + symmetry_loss(fake, laplacian_space=True)
        terms = synthesis_terms(self.embedder, fake, target)
        loss = (
            cfg.lambda_pixel * terms["pixel"]
            + cfg.lambda_local * local
            + cfg.lambda_symmetry * symmetry
            + cfg.lambda_adv * g_adv
            + cfg.lambda_identity * terms["identity"]
            + cfg.lambda_tv * terms["tv"]
        )
        self.optimize("generator", loss)
        self.set_requires_grad(True, "discriminator")
        return {
            "d_adv": d_loss.item(),
            "g_adv": g_adv.item(),
            "g_local": local.item(),
            "g_symmetry": symmetry.item(),
            **{f"g_{k}": v.item() for k, v in terms.items()},
        }
