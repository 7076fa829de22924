"""pix2pixHD (Wang et al., CVPR 2018): high-resolution synthesis from semantic label maps.

Coarse to fine, as the paper trains it: first G1 (the global generator) alone, on the input
and target at half resolution; then the local enhancer G2 with G1's weights copied in and
held fixed (``niter_fix_global``); then both together. D is multi-scale (each scale a
PatchGAN on label channels + image, never the features); G minimises LSGAN plus the
discriminator feature-matching loss (λ = 10) and, when a VGG19 file is given, the perceptual
loss. The instance boundary map is part of the label input, and the feature encoder E (its
output averaged per instance) is trained through G's losses, as upstream (one optimiser for
G and E there, two here with the same settings).

CMP facades have no instance maps: the label map stands in for one (see
:mod:`gantry.core.labelmaps`), as in the served model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import Pix2PixHDConfig
from trainer.archs import build_network
from trainer.archs.pix2pixhd import LocalEnhancer
from trainer.data import Sample
from trainer.distributed import unwrap
from trainer.losses import build_gan_loss, feature_matching
from trainer.recipes import RECIPES
from trainer.recipes.paired import PairedRecipe

SAMPLE_ROWS = 4
# G1's head (pad, 7x7 conv, Tanh): the entries the LocalEnhancer's copy of G1 does not have.
_HEAD = 3


def half(x: torch.Tensor) -> torch.Tensor:
    """The LocalEnhancer's input pyramid step: 3x3 average, stride 2, borders over real px."""
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


@RECIPES.register("pix2pixhd")
class Pix2PixHDRecipe(PairedRecipe):
    """G1 → G2 (G1 fixed) → both; multi-scale D; LSGAN + feature matching (+ VGG); E."""

    config_type = Pix2PixHDConfig
    config: Pix2PixHDConfig

    def build(self) -> None:
        cfg = self.config
        g1 = build_network(cfg.global_generator)
        generator = build_network(cfg.generator)
        if not isinstance(generator, LocalEnhancer):
            raise TypeError(f"{cfg.generator} is not a pix2pixHD LocalEnhancer")
        encoder = build_network(cfg.encoder)
        discriminator = build_network(cfg.discriminator)
        self.add("global", g1, self.adam(g1))
        self.add("generator", generator, self.adam(generator))
        self.add("encoder", encoder, self.adam(encoder))
        self.add("discriminator", discriminator, self.adam(discriminator))
        self.n_layers = int(getattr(discriminator, "n_layers", 3))
        self.gan_loss = build_gan_loss(cfg.gan_loss)
        self.perceptual = self.perceptual_term(cfg)
        self.load_pairs()

    def generator_architecture(self) -> str:
        return self.config.generator

    def phase(self, step: int) -> str:
        """``global`` (G1 alone), ``local_fixed`` (G2 + E, G1 fixed) or ``joint``."""
        if step < self.config.global_steps:
            return "global"
        return "local_fixed" if step < self.config.fixed_until else "joint"

    def _hand_over_g1(self) -> None:
        """Copy G1 (without its head) into the LocalEnhancer's ``model``: the fine stage
        starts from the coarse one, as pix2pixHD's ``--load_pretrain`` of the global net."""
        g1_model = unwrap(self.networks["global"]).get_submodule("model")
        trunk = unwrap(self.networks["generator"]).get_submodule("model")
        trunk.load_state_dict(nn.Sequential(*list(g1_model.children())[:-_HEAD]).state_dict())

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        phase = self.phase(step)
        if phase != "global" and step == cfg.global_steps and cfg.global_steps > 0:
            self._hand_over_g1()
        encoder, discriminator = self.networks["encoder"], self.networks["discriminator"]
        labels, target = batch["label"], batch["target"]
        with self.autocast():
            features = encoder(target, batch["inst"])
            g_input = torch.cat([labels, features], 1)
            if phase == "global":
                g_name = "global"
                g_input, labels, target = half(g_input), half(labels), half(target)
            else:
                g_name = "generator"
            fake = self.networks[g_name](g_input)
            pred_fake = discriminator(torch.cat([labels, fake], 1))
            pred_real = discriminator(torch.cat([labels, target], 1))
            loss_gan = self.gan_loss.generator(pred_fake, pred_real)
            loss_feat = feature_matching(
                pred_fake, pred_real, cfg.lambda_feat, weighting="pix2pixhd"
            )
            loss_g = loss_gan + loss_feat
            losses = {"g_gan": loss_gan.item(), "g_feat": loss_feat.item()}
            if self.perceptual is not None:
                loss_vgg = self.perceptual(fake.float(), target) * cfg.lambda_perceptual
                loss_g = loss_g + loss_vgg
                losses["g_vgg"] = loss_vgg.item()
        frozen: tuple[nn.Parameter, ...] = ()
        if phase == "local_fixed":
            frozen = tuple(unwrap(self.networks["generator"]).get_submodule("model").parameters())
        # Upstream's order: G (and E) on this forward pass, then D on the detached fake.
        self.optimize(g_name, loss_g, also=("encoder",), frozen=frozen)
        with self.autocast():
            pred_fake_d = discriminator(torch.cat([labels, fake.detach()], 1))
            pred_real_d = discriminator(torch.cat([labels, target], 1))
            loss_d = 0.5 * self.gan_loss.discriminator(pred_real_d, pred_fake_d)
        self.optimize("discriminator", loss_d)
        return {
            **losses,
            "d": loss_d.item(),
            "phase": float(("global", "local_fixed", "joint").index(phase)),
        }

    @torch.no_grad()
    def _translate(self, generator: nn.Module, features: bool) -> torch.Tensor:
        encoder = unwrap(self.networks["encoder"])
        was = encoder.training
        encoder.eval()
        try:
            feats = encoder(self._val["target"], self._val["inst"])
        finally:
            encoder.train(was)
        if not features:
            feats = torch.zeros_like(feats)
        return generator(torch.cat([self._val["label"], feats], 1)).float()

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Mean |G(x) - photo| on held-aside pairs in [0, 1] units: with the encoder's
        features of the photo (reconstruction, as training sees it), with zero features (a
        request that names no style), and the mean training photo's (the baseline)."""
        target = self._val["target"]
        return {
            "val_l1": float((self._translate(generator, True) - target).abs().mean()) / 2,
            "val_l1_zero_features": float((self._translate(generator, False) - target).abs().mean())
            / 2,
            "val_l1_mean_photo": float((self._mean_target - target).abs().mean()) / 2,
        }

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        outputs = self._translate(generator, True)[:SAMPLE_ROWS]
        zero = self._translate(generator, False)[:SAMPLE_ROWS]
        colours = self._val["input"][:SAMPLE_ROWS]
        targets = self._val["target"][:SAMPLE_ROWS]
        return [list(row) for row in zip(colours, outputs, zero, targets, strict=True)]
