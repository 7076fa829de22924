"""Globally and Locally Consistent Image Completion (Iizuka et al., SIGGRAPH 2017): a
completion network trained by the MSE inside the hole and, later, against a context
discriminator that judges the whole image and the patch around the hole.

Networks (:mod:`trainer.archs.glcic`): the completion network C (the generator a run
evaluates and exports; its input is RGB in [0, 1] and the mask, the hole filled with the
training set's mean pixel inside it) and the context discriminator D (a global D on the
whole completed image and a local D on the half-size patch around the hole, one logit).
The completed image is always the composite: the input outside the hole, C's output inside.

**Phases** (the paper's training procedure, in loop steps; ``steps`` counts batches):

1. ``step < t_c``: C alone, on the MSE between its output and the truth over the hole's
   pixels (the paper's weighted MSE ``||M_c ⊙ (C(x, M_c) − x)||²``, here averaged over the
   hole's pixels and channels so its scale does not depend on the hole's size);
2. ``t_c <= step < t_c + t_d``: D alone, real crops against completions of the fixed C
   (BCE on logits);
3. then both: D as in 2, then C on the MSE plus ``alpha`` times the non-saturating
   adversarial loss ``BCE(D(completed), real)`` (otenim/GLCIC-PyTorch's form of the paper's
   ``α log(1 − D(C(x, M_c), M_c))``). The paper also scales D's loss by α; with Adam, which
   normalises gradient scale, that changes nothing but the epsilon's weight, so D's loss is
   the plain BCE.

The paper trains with Adadelta for 500,000 iterations; the shipped config trains with Adam
for 1,200 (see :class:`~gantry.core.training.GLCICConfig`). The paper post-processes with
Poisson blending; served completions are the plain composite.

The randomness (the crops and holes the dataset makes) comes from the global generator the
loop seeds per step, so a resumed run repeats the uninterrupted one exactly; there is no
other state to checkpoint.

**Evaluation** on the held-aside photos' fixed crops and holes: PSNR over the hole's pixels
of the completed image, next to a mean fill's and OpenCV's Telea fill's
(:mod:`trainer.evaluation.inpainting`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from gantry.core.training import GLCICConfig
from trainer.archs import build_network
from trainer.archs.glcic import composite
from trainer.data import Sample, TrainingDataset, build_dataset, collate
from trainer.data.masks import hole_geometry
from trainer.distributed import unwrap
from trainer.evaluation import inpainting_figures
from trainer.losses import build_gan_loss
from trainer.recipes import RECIPES
from trainer.recipes.base import Recipe

SAMPLE_ROWS = 4
SAMPLE_KEYS = ("image", "mask", "patch")
Phase = Literal["completion", "discriminator", "joint"]


def phase_of(config: GLCICConfig, step: int) -> Phase:
    """Which of the paper's three phases (0-based) ``step`` belongs to."""
    if step < config.t_c:
        return "completion"
    if step < config.t_c + config.t_d:
        return "discriminator"
    return "joint"


def hole_mse(output: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The squared error averaged over the hole's pixels and the channels (mask 1 = hole)."""
    channels = output.shape[1]
    return ((output - truth).pow(2) * mask).sum() / (mask.sum() * channels).clamp(min=1)


def local_patches(images: torch.Tensor, origins: torch.Tensor, side: int) -> torch.Tensor:
    """The (N, C, side, side) patches of (N, C, H, W) images at (N, 2) (top, left) origins."""
    return torch.stack(
        [
            image[:, top : top + side, left : left + side]
            for image, (top, left) in zip(images, origins.tolist(), strict=True)
        ]
    )


def network_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """C's input: RGB in [0, 1] and the mask (C fills the hole with its mean pixel itself)."""
    return torch.cat([image, mask], dim=1)


@RECIPES.register("glcic")
class GLCICRecipe(Recipe):
    """Completion network against a global + local context discriminator, in three phases."""

    config_type = GLCICConfig
    config: GLCICConfig

    def build(self) -> None:
        cfg = self.config
        size = cfg.data.size
        self.local = hole_geometry(size).local
        completion = build_network(cfg.generator)
        discriminator = build_network(cfg.discriminator, global_size=size, local_size=self.local)
        self.add("generator", completion, self.adam(completion))
        self.add("discriminator", discriminator, self.adam(discriminator))
        self.gan_loss = build_gan_loss("nonsaturating")
        self._train = build_dataset(cfg.data.dataset, self.data_dir, "train", size)
        val = build_dataset(cfg.data.dataset, self.data_dir, "val", size)
        held = [val.sample(i) for i in range(min(cfg.data.val_images, len(val)))]
        if not held or not set(SAMPLE_KEYS) <= set(held[0]):
            raise TypeError(f"glcic needs photos with holes; {cfg.data.dataset} has none")
        self._val = {k: v.to(self.device) for k, v in collate(held).items()}

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.generator

    def _judge(self, images: torch.Tensor, origins: torch.Tensor) -> torch.Tensor:
        patches = local_patches(images, origins, self.local)
        logits: torch.Tensor = self.networks["discriminator"](patches, images)
        return logits.float()

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        completion = self.networks["generator"]
        image, mask, origins = (batch["image"] + 1) / 2, batch["mask"], batch["patch"]
        phase = phase_of(cfg, step)
        losses: dict[str, float] = {}
        if phase == "discriminator":
            with torch.no_grad(), self.autocast():
                output = completion(network_input(image, mask)).float()
        else:
            with self.autocast():
                output = completion(network_input(image, mask)).float()
        completed = composite(image, mask, output)

        if phase != "completion":  # D: real crops against completions (detached)
            fake = completed.detach()
            with self.autocast():
                d_loss = self.gan_loss.discriminator(
                    self._judge(image, origins), self._judge(fake, origins)
                )
            self.optimize("discriminator", d_loss)
            losses["d_adv"] = d_loss.item()

        if phase != "discriminator":  # C: the MSE in the hole (+ alpha x adversarial)
            mse = hole_mse(output, image, mask)
            loss = mse
            if phase == "joint":
                self.set_requires_grad(False, "discriminator")
                with self.autocast():
                    g_adv = self.gan_loss.generator(self._judge(completed, origins))
                loss = mse + cfg.alpha * g_adv
                losses["g_adv"] = g_adv.item()
            self.optimize("generator", loss)
            self.set_requires_grad(True, "discriminator")
            losses["g_mse"] = mse.item()
        return losses

    @torch.no_grad()
    def _complete(
        self, completion: nn.Module, image: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        output: torch.Tensor = completion(network_input(image, mask)).float()
        return composite(image, mask, output)

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """PSNR inside the holes of the held-aside crops: the completion, a mean fill and
        OpenCV's Telea fill (see :mod:`trainer.evaluation.inpainting`)."""
        image, mask = (self._val["image"] + 1) / 2, self._val["mask"]
        return inpainting_figures(self._complete(generator, image, mask), image, mask)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside crop: the input with its hole white, the completion, the truth."""
        device = next(unwrap(generator).parameters()).device
        image = ((self._val["image"][:SAMPLE_ROWS] + 1) / 2).to(device)
        mask = self._val["mask"][:SAMPLE_ROWS].to(device)
        holed = composite(image, mask, torch.ones_like(image))
        completed = self._complete(generator, image, mask)
        return [
            [h * 2 - 1, c * 2 - 1, t * 2 - 1]
            for h, c, t in zip(holed, completed, image, strict=True)
        ]
