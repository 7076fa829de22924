"""CAPG-GAN (Hu et al., CVPR 2018): face rotation guided by landmark heatmaps, judged by a
couple of agents.

Networks (:mod:`trainer.archs.capg_gan`): the generator G reads the source face and the
heatmaps of its own points and of the target pose's points; two PatchGAN agents judge
stacks of channels:

- the **identity agent** D_ii: (source face, frontal face), real with the true frontal, fake
  with G's: whether the frontal face is the same person as the source;
- the **pose agent** D_pe: (target heatmaps, frontal face): whether the face has the pose
  the heatmaps ask for.

G's loss (the paper's terms, this config's weights): ``lambda_pixel`` x the multi-scale L1
to the truth (full, half and quarter size) + ``lambda_identity`` x (1 - cosine) of the frozen
embedder's features of output and truth + ``lambda_adv`` x each agent's adversarial term +
``lambda_tv`` x total variation. Both agents share one optimiser (their losses are summed).

In training the target heatmaps are the true frontal's own points; served (and evaluated),
G's ``frontal_points`` buffer, the mean points of the frontal training chips, which
:meth:`build` sets before the first step so every checkpoint and export carries it.
"""

from __future__ import annotations

import torch

from gantry.core.training import CAPGGANConfig
from trainer.archs import build_network
from trainer.archs.capg_gan import CAPGGenerator, render_heatmaps
from trainer.data import Sample
from trainer.losses import build_gan_loss
from trainer.recipes import RECIPES
from trainer.recipes.frontalization import FrontalizationRecipe, sample_batch, synthesis_terms


@RECIPES.register("capg_gan")
class CAPGGANRecipe(FrontalizationRecipe):
    """Heatmap-conditioned generator against identity and pose agents."""

    config_type = CAPGGANConfig
    config: CAPGGANConfig

    def build(self) -> None:
        cfg = self.config
        train = self.build_data()
        generator = build_network(cfg.generator)
        if not isinstance(generator, CAPGGenerator):
            raise TypeError(f"capg_gan needs a CAPG generator, not {cfg.generator}")
        with torch.no_grad():
            generator.frontal_points.copy_(train.mean_frontal_points())
        self.size, self.sigma = generator.size, generator.sigma
        channels, points = 1, generator.frontal_points.shape[0]
        identity_agent = build_network(cfg.discriminator, in_channels=2 * channels)
        pose_agent = build_network(cfg.discriminator, in_channels=points + channels)
        self.add("generator", generator, self.adam(generator))
        self.add("identity_agent", identity_agent, None)
        self.add("pose_agent", pose_agent, None)
        self.add_optimizer("agents", self.adam(identity_agent, pose_agent))
        self.gan_loss = build_gan_loss(cfg.gan_loss)

    def _agents(
        self, source: torch.Tensor, heatmaps: torch.Tensor, face: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        identity = self.networks["identity_agent"](torch.cat([source, face], dim=1))
        pose = self.networks["pose_agent"](torch.cat([heatmaps, face], dim=1))
        return identity.float(), pose.float()

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        image, points, target, target_points = sample_batch(batch)
        heatmaps = render_heatmaps(target_points, self.size, self.sigma)
        with self.autocast():
            fake = self.networks["generator"](image, points, target_points).float()

        # The agents: true frontal pairs against G's (detached).
        with self.autocast():
            real_ii, real_pe = self._agents(image, heatmaps, target)
            fake_ii, fake_pe = self._agents(image, heatmaps, fake.detach())
            d_loss = self.gan_loss.discriminator(real_ii, fake_ii) + self.gan_loss.discriminator(
                real_pe, fake_pe
            )
        self.optimize("agents", d_loss)

        # G: pixels, identity, both agents, smoothness.
        self.set_requires_grad(False, "identity_agent", "pose_agent")
        with self.autocast():
            adv_ii, adv_pe = self._agents(image, heatmaps, fake)
            g_adv = self.gan_loss.generator(adv_ii) + self.gan_loss.generator(adv_pe)
        terms = synthesis_terms(self.embedder, fake, target)
        loss = (
            cfg.lambda_pixel * terms["pixel"]
            + cfg.lambda_identity * terms["identity"]
            + cfg.lambda_adv * g_adv
            + cfg.lambda_tv * terms["tv"]
        )
        self.optimize("generator", loss)
        self.set_requires_grad(True, "identity_agent", "pose_agent")
        return {
            "d_adv": d_loss.item(),
            "g_adv": g_adv.item(),
            **{f"g_{k}": v.item() for k, v in terms.items()},
        }
