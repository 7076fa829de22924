"""DeblurGAN (Kupyn et al., CVPR 2018): blind motion deblurring by a conditional WGAN-GP,
trained as KupynOrest/DeblurGAN's ``ConditionalGAN.optimize_parameters`` does.

Networks: G (:class:`~trainer.archs.deblurgan.DeblurGANGenerator`, a ResNet generator that
learns the residual: ``G(x) = clamp(x + R(x))``) and a PatchGAN critic on the image alone
(no sigmoid), from :mod:`trainer.archs.deblurgan`. G is the generator a run evaluates and
exports (``generator_key``).

**A loop step is one G update.** Each step draws a batch of (blurred, sharp) pairs
(:mod:`trainer.data.blur`), runs G once on the blurred images, then:

1. the critic, ``n_critic`` times (upstream: 5) on that batch and that output (detached):
   ``E[C(G(x))] - E[C(y)]`` plus ``λ_gp`` times the gradient penalty on random
   interpolates of the sharp ``y`` and ``G(x)`` (:func:`trainer.losses.gradient_penalty`:
   one ε per image and the norm over the whole image, where upstream draws one ε per batch
   and takes the norm per pixel over channels), in float32 outside autocast;
2. G, once: ``-E[C(G(x))]`` plus ``λ_content`` (100) times the content loss.

The content loss is upstream's perceptual loss (VGG19 features at ``conv3_3``, before its
ReLU) when the config names a VGG19 weights file; ours is the L1 between ImageNet-normalised
features (:class:`~trainer.losses.VGGPerceptualLoss`), where upstream takes the MSE between
features of unnormalised images. No VGG weights ship with Gantry and a random VGG measures
nothing, so by default the content loss is the pixel L1 (pix2pix's, at pix2pix's weight) and
the run's notes say so.

With ``identity_init`` (the shipped config) G's output conv starts at zero, so G starts as
the identity and the first steps learn a deblurring residual rather than undo a random one:
measured on the shipped config, PSNR on the held-aside pairs is 18.0 dB at upstream's
initialisation (the blurred input: 24.3) and 23.7 after 100 steps, against 24.3 and 24.6
with it.

The randomness (dropout, the penalty's ε, and the pairs the dataset makes) comes from the
global generator the loop seeds per step, so a resumed run repeats the uninterrupted one
exactly; there is no other state to checkpoint.

**Evaluation** on the held-aside photos' fixed pairs: PSNR and SSIM on luma (8-bit rounded,
:mod:`trainer.evaluation.restoration`) of G(blurred) against the sharp crop, next to those
of the blurred input itself, the baseline a deblurring G must beat.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import DeblurGANConfig
from trainer.archs import build_network
from trainer.archs.deblurgan import DeblurGANGenerator
from trainer.data import Sample, TrainingDataset, build_dataset, collate
from trainer.distributed import unwrap
from trainer.evaluation import restoration_figures
from trainer.losses import build_gan_loss, gradient_penalty, perceptual_loss_or_none
from trainer.recipes import RECIPES
from trainer.recipes.base import Recipe

SAMPLE_ROWS = 4
CONTENT_LAYER = "conv3_3"  # upstream's PerceptualLoss: VGG19 features up to index 14
PAIR_KEYS = ("blurred", "sharp")


@RECIPES.register("deblurgan")
class DeblurGANRecipe(Recipe):
    """Residual ResNet G against a PatchGAN critic: WGAN-GP + λ · content loss."""

    config_type = DeblurGANConfig
    config: DeblurGANConfig

    def build(self) -> None:
        cfg = self.config
        g = build_network(cfg.generator)
        if cfg.identity_init:
            if not isinstance(g, DeblurGANGenerator):
                raise TypeError(f"identity_init needs a DeblurGAN generator, not {cfg.generator}")
            g.zero_residual_()
        critic = build_network(cfg.critic)
        self.add("generator", g, self.adam(g))
        self.add("critic", critic, self.adam(critic))
        self.gan_loss = build_gan_loss("wgan")
        perceptual, note = perceptual_loss_or_none(
            cfg.perceptual_weights, layer_weights={CONTENT_LAYER: 1.0}
        )
        self.notes.append(note)
        if perceptual is None:
            self.notes.append(
                f"content loss: pixel L1 x{cfg.lambda_content:g} in place of DeblurGAN's "
                f"VGG19 {CONTENT_LAYER} loss (set perceptual_weights to a VGG19 file for it)"
            )
        self.perceptual = perceptual.to(self.device) if perceptual is not None else None
        size = cfg.data.size
        self._train = build_dataset(cfg.data.dataset, self.data_dir, "train", size)
        val = build_dataset(cfg.data.dataset, self.data_dir, "val", size)
        held = [val.sample(i) for i in range(min(cfg.data.val_images, len(val)))]
        if not held or not set(PAIR_KEYS) <= set(held[0]):
            raise TypeError(f"deblurgan needs blurred/sharp pairs; {cfg.data.dataset} has none")
        self._val = {k: v.to(self.device) for k, v in collate(held).items()}

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.generator

    def content_loss(self, restored: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
        """The VGG19 conv3_3 feature loss with a weights file, else the pixel L1 (unweighted)."""
        if self.perceptual is not None:
            return self.perceptual(restored, sharp)
        return F.l1_loss(restored, sharp)

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        g, critic = self.networks["generator"], self.networks["critic"]
        blurred, sharp = batch["blurred"], batch["sharp"]
        with self.autocast():
            restored = g(blurred)
        fake = restored.detach().float()

        # 1. The critic, n_critic times on this batch and this G output.
        for _ in range(cfg.n_critic):
            with self.autocast():
                d_adv = self.gan_loss.discriminator(critic(sharp).float(), critic(fake).float())
            d_gp = gradient_penalty(critic, sharp, fake, lambda_gp=1.0)
            self.optimize("critic", d_adv + cfg.lambda_gp * d_gp)

        # 2. G: fool the updated critic, and stay close to the sharp image.
        self.set_requires_grad(False, "critic")
        with self.autocast():
            g_adv = self.gan_loss.generator(critic(restored).float())
            content = self.content_loss(restored.float(), sharp)
        self.optimize("generator", g_adv + cfg.lambda_content * content)
        self.set_requires_grad(True, "critic")
        return {
            "d_adv": d_adv.item(),
            "d_gp": d_gp.item(),
            "g_adv": g_adv.item(),
            "g_content": content.item(),
        }

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """PSNR / SSIM on luma of G(blurred) and of the blurred input, vs the sharp crops of
        the held-aside photos (see :mod:`trainer.evaluation.restoration`)."""
        blurred, sharp = self._val["blurred"], self._val["sharp"]
        return restoration_figures(generator(blurred).float(), blurred, sharp)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside pair: the blurred input, G's restoration, the sharp truth."""
        device = next(unwrap(generator).parameters()).device
        blurred = self._val["blurred"][:SAMPLE_ROWS].to(device)
        restored = generator(blurred).float()
        sharp = self._val["sharp"][:SAMPLE_ROWS]
        return [[b, r, s] for b, r, s in zip(blurred, restored, sharp, strict=True)]
