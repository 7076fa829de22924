"""pix2pix (Isola et al., CVPR 2017): conditional GAN for paired image-to-image translation.

G is a U-Net with skips whose dropout is its noise (z is not an input: the paper found G
learns to ignore it); D is a 70x70 PatchGAN scoring (input, output) pairs; G minimises the
cGAN loss plus λ·L1 to the target (λ = 100), D the cGAN loss halved (junyanz: "slows down
the rate at which D learns"). Steps follow junyanz's ``optimize_parameters``: G's forward,
then D's update on the detached fake, then G's update through the updated D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import Pix2PixConfig
from trainer.archs import build_network
from trainer.data import Sample
from trainer.losses import build_gan_loss
from trainer.recipes import RECIPES
from trainer.recipes.paired import PairedRecipe

SAMPLE_ROWS = 4


@RECIPES.register("pix2pix")
class Pix2PixRecipe(PairedRecipe):
    """U-Net generator against a PatchGAN on pairs, cGAN + λ·L1 (+ an optional VGG term)."""

    config_type = Pix2PixConfig
    config: Pix2PixConfig

    def build(self) -> None:
        cfg = self.config
        generator = build_network(cfg.generator)
        # D sees the input and the output stacked on channels (conditional GAN).
        discriminator = build_network(cfg.discriminator, input_nc=6)
        self.add("generator", generator, self.adam(generator))
        self.add("discriminator", discriminator, self.adam(discriminator))
        self.gan_loss = build_gan_loss(cfg.gan_loss)
        self.perceptual = self.perceptual_term(cfg)
        self.load_pairs()

    def generator_architecture(self) -> str:
        return self.config.generator

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        real_a, real_b = batch["input"], batch["target"]
        with self.autocast():
            fake_b = generator(real_a)
            pred_fake = discriminator(torch.cat([real_a, fake_b.detach()], 1))
            pred_real = discriminator(torch.cat([real_a, real_b], 1))
            loss_d = 0.5 * self.gan_loss.discriminator(pred_real, pred_fake)
        self.optimize("discriminator", loss_d)

        with self.autocast():
            pred_fake = discriminator(torch.cat([real_a, fake_b], 1))
            loss_g_gan = self.gan_loss.generator(pred_fake, pred_real)
            loss_l1 = F.l1_loss(fake_b.float(), real_b) * cfg.lambda_l1
            loss_g = loss_g_gan + loss_l1
            losses = {"d": loss_d.item(), "g_gan": loss_g_gan.item(), "g_l1": loss_l1.item()}
            if self.perceptual is not None:
                loss_vgg = self.perceptual(fake_b.float(), real_b) * cfg.lambda_perceptual
                loss_g = loss_g + loss_vgg
                losses["g_vgg"] = loss_vgg.item()
        self.optimize("generator", loss_g)
        return losses

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Mean |G(x) - photo| on the held-aside pairs, in [0, 1] pixel units, and the same
        for the mean training photo (what a G that ignores its input would score at best)."""
        fake = generator(self._val["input"]).float()
        target = self._val["target"]
        return {
            "val_l1": float((fake - target).abs().mean()) / 2,
            "val_l1_mean_photo": float((self._mean_target - target).abs().mean()) / 2,
        }

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        inputs = self._val["input"][:SAMPLE_ROWS]
        outputs = generator(inputs).float()
        targets = self._val["target"][:SAMPLE_ROWS]
        return [[i, o, t] for i, o, t in zip(inputs, outputs, targets, strict=True)]
