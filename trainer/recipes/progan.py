"""Progressive GAN (Karras et al., ICLR 2018): unconditional faces grown from 4x4 to the
config's size, trained as tkarras/progressive_growing_of_gans' ``train.py`` and
``loss.py`` do (``G_wgan`` / ``D_wgangp``).

Networks: :class:`~trainer.archs.progan.ProGANGenerator` (exported: the EMA copy at the final
resolution, latent in, image out) and :class:`~trainer.archs.progan.ProGANDiscriminator`.

**A loop step is one D update and one G update** at the step's stage and fade-in alpha,
which :meth:`~gantry.core.training.ProGANConfig.stage_at` derives from the step number:

1. the real faces (read at the final size) are average-pooled to the stage's resolution and,
   during a fade-in, blended with their half-resolution version upsampled, by the same alpha
   as G's output (tkarras' ``process_reals``);
2. D: ``E[D(G(z))] - E[D(x)]`` plus ``λ_gp`` (10) times the gradient penalty on random
   interpolates (:func:`trainer.losses.gradient_penalty`; its ``(‖∇‖ - 1)²`` is tkarras'
   ``wgan_target`` 1) plus ``eps_drift`` (0.001) times ``E[D(x)²]``, which keeps D's scores
   from drifting far from 0. Minibatch standard deviation makes the samples of a batch
   interact in D; the penalty differentiates the summed scores, as tkarras does;
3. G: ``-E[D(G(z))]`` through the updated D, on the same latents (tkarras draws new ones;
   reusing them saves a G forward on a CPU).

When a new resolution starts fading in, both Adams' moments are cleared
(``reset_opt_for_new_lod``): the step derives it, so a resumed run does the same. The
latents and the penalty's ε come from the global generator the loop seeds per step (the
faces and flips from the loop's step sampler), so a resumed run repeats the uninterrupted
one exactly; the only extra state is how
many steps were trained, which decides the stage an evaluation looks at.

**Evaluation** at the stage and alpha of the last trained step: the discriminator's gap
between the held-aside real faces and G's faces from fixed latents (mean D(real) - mean
D(fake), the critic's estimate of the Wasserstein distance: lower means D tells them apart
less), next to the gap between training faces and held-aside faces (what a G as good as
the data would score).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import ProGANConfig
from trainer.archs import build_network
from trainer.archs.progan import ProGANDiscriminator, ProGANGenerator
from trainer.data import Sample, TrainingDataset, build_dataset
from trainer.distributed import unwrap
from trainer.losses import build_gan_loss, gradient_penalty
from trainer.recipes import RECIPES
from trainer.recipes.base import Recipe

SAMPLE_ROWS = 4
SAMPLE_COLUMNS = 6
EVAL_LATENT_SEED = 0  # the fixed latents of the evaluation and the sample grids


def at_stage(images: torch.Tensor, stage: int, alpha: float, stages: int) -> torch.Tensor:
    """Final-size images as the stage sees them: average-pooled to ``4 · 2**stage`` and,
    while the stage fades in (``alpha`` < 1), blended with their half-size version
    upsampled (tkarras' ``process_reals``)."""
    factor = 2 ** (stages - 1 - stage)
    x = F.avg_pool2d(images, factor) if factor > 1 else images
    if stage > 0 and alpha < 1.0:
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
        x = torch.lerp(coarse, x, alpha)
    return x


@RECIPES.register("progan")
class ProGANRecipe(Recipe):
    """G and D growing together: WGAN-GP + drift, one D and one G update per step."""

    config_type = ProGANConfig
    config: ProGANConfig

    def build(self) -> None:
        cfg = self.config
        g = build_network(cfg.generator)
        d = build_network(cfg.discriminator)
        if not isinstance(g, ProGANGenerator) or not isinstance(d, ProGANDiscriminator):
            raise TypeError(
                f"progan trains ProGAN networks, not {cfg.generator}, {cfg.discriminator}"
            )
        if g.resolution != cfg.data.size or d.resolution != cfg.data.size:
            raise ValueError(
                f"{cfg.generator} / {cfg.discriminator} grow to {g.resolution} / "
                f"{d.resolution} px; data.size is {cfg.data.size}"
            )
        self.latent_dim = g.latent_dim
        self.add("generator", g, self.adam(g))
        self.add("discriminator", d, self.adam(d))
        self.gan_loss = build_gan_loss("wgan")
        self._train = build_dataset(cfg.data.dataset, self.data_dir, "train", cfg.data.size)
        val = build_dataset(cfg.data.dataset, self.data_dir, "val", cfg.data.size)
        count = min(cfg.data.val_images, len(val))
        self._val = torch.stack([val.sample(i)["image"] for i in range(count)]).to(self.device)
        # As many training faces, for the real-vs-real baseline of the evaluation.
        self._train_faces = torch.stack([self._train.sample(i)["image"] for i in range(count)])
        self._train_faces = self._train_faces.to(self.device)
        latents = torch.Generator().manual_seed(EVAL_LATENT_SEED)
        self._z = torch.randn(
            max(count, SAMPLE_ROWS * SAMPLE_COLUMNS), g.latent_dim, generator=latents
        )
        self._z = self._z.to(self.device)
        self.steps_done = 0

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.generator

    def extra_state(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state.get("steps_done", 0))

    def stage(self) -> tuple[int, float]:
        """The stage and alpha of the last trained step (stage 0 before any)."""
        return self.config.stage_at(max(self.steps_done - 1, 0))

    def _reset_optimizers_at_growth(self, step: int) -> None:
        cfg = self.config
        if not cfg.reset_optimizers_per_stage:
            return
        if any(step == cfg.stage_start(k) for k in range(1, cfg.stages)):
            for optimizer in self.optimizers.values():
                optimizer.state.clear()

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        g, d = self.networks["generator"], self.networks["discriminator"]
        stage, alpha = cfg.stage_at(step)
        self._reset_optimizers_at_growth(step)
        reals = at_stage(batch["image"], stage, alpha, cfg.stages)
        z = torch.randn(reals.shape[0], self.latent_dim, device=self.device)
        with self.autocast():
            fakes = g(z, stage, alpha)

        # 1. D: WGAN-GP on this batch, plus the drift term on the real scores.
        with self.autocast():
            real_scores = d(reals, stage, alpha).float()
            fake_scores = d(fakes.detach(), stage, alpha).float()
            d_adv = self.gan_loss.discriminator(real_scores, fake_scores)
        d_gp = gradient_penalty(
            lambda x: d(x, stage, alpha), reals, fakes.detach().float(), lambda_gp=1.0
        )
        d_drift = real_scores.pow(2).mean()
        self.optimize("discriminator", d_adv + cfg.lambda_gp * d_gp + cfg.eps_drift * d_drift)

        # 2. G: raise the updated D's scores of the same fakes.
        self.set_requires_grad(False, "discriminator")
        with self.autocast():
            g_adv = self.gan_loss.generator(d(fakes, stage, alpha).float())
        self.optimize("generator", g_adv)
        self.set_requires_grad(True, "discriminator")
        self.steps_done = step + 1
        return {
            "d_adv": d_adv.item(),
            "d_gp": d_gp.item(),
            "d_drift": d_drift.item(),
            "g_adv": g_adv.item(),
            "stage": float(stage),
            "alpha": alpha,
        }

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """D's real/fake gap on held-aside faces at the current stage, and its real/real
        gap (training faces vs held-aside faces) as the baseline."""
        cfg = self.config
        stage, alpha = self.stage()
        d = unwrap(self.networks["discriminator"])
        n = self._val.shape[0]
        real = at_stage(self._val, stage, alpha, cfg.stages)
        train = at_stage(self._train_faces, stage, alpha, cfg.stages)
        fake = generator(self._z[:n], stage, alpha).float()
        real_score = float(d(real, stage, alpha).mean())
        return {
            "val_d_gap": real_score - float(d(fake, stage, alpha).mean()),
            "val_d_gap_real": float(d(train, stage, alpha).mean()) - real_score,
            "val_resolution": float(4 * 2**stage),
            "val_alpha": alpha,
        }

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """G's faces from the fixed latents at the current stage, blown up (nearest) to the
        final size, then two held-aside real faces at the same resolution."""
        cfg = self.config
        stage, alpha = self.stage()
        device = next(unwrap(generator).parameters()).device
        z = self._z[: SAMPLE_ROWS * SAMPLE_COLUMNS].to(device)
        factor = 2 ** (cfg.stages - 1 - stage)
        fakes = generator(z, stage, alpha).float().clamp(-1, 1)
        reals = at_stage(self._val[: 2 * SAMPLE_ROWS], stage, alpha, cfg.stages)
        if factor > 1:
            fakes = F.interpolate(fakes, scale_factor=float(factor), mode="nearest")
            reals = F.interpolate(reals, scale_factor=float(factor), mode="nearest")
        rows = []
        for r in range(SAMPLE_ROWS):
            row = list(fakes[r * SAMPLE_COLUMNS : (r + 1) * SAMPLE_COLUMNS].cpu())
            rows.append(row + list(reals[2 * r : 2 * r + 2].cpu()))
        return rows
