"""SRGAN (Ledig et al., CVPR 2017) and ESRGAN (Wang et al., ECCVW 2018): x4 super-resolution
trained in two stages, as BasicSR's ``SRModel`` and ``SRGANModel`` / ``ESRGANModel`` do.

Networks: G, the generator a run evaluates and exports (:class:`~trainer.archs.srresnet.
SRResNet` for SRGAN, :class:`~trainer.archs.rrdbnet.RRDBNet` for ESRGAN, whose keys the
served realesrgan-x4plus loads into), taking and giving RGB in [0, 1]; and, in the GAN stage
only, the VGG-style discriminator (:class:`~trainer.archs.srresnet.VGGStyleDiscriminator`).

**Stages** (``stage`` in the config, one run each; the GAN run starts G from the PSNR run's
``generator.pth`` or from a model's weights, ``init_weights`` / ``init_model``):

* ``psnr``: one G update per step on the pixel loss alone (SRResNet: MSE; ESRGAN: L1).
* ``gan``: per step, as BasicSR's ``optimize_parameters``: G first, with D frozen, on
  ``lambda_pixel`` · pixel + ``lambda_perceptual`` · VGG19 (features before the ReLU of
  ``perceptual_layer``, :class:`~trainer.losses.VGGPerceptualLoss`) + ``lambda_adv`` · the
  adversarial loss (SRGAN: non-saturating, ``-log D(G(x))``; ESRGAN: relativistic average,
  which reads D on the real batch too); then D once on the real batch and the same G
  output, detached.

No VGG weights ship with Gantry (a random VGG measures nothing), so the perceptual term is
on only with ``perceptual_weights`` and the run's notes say when it is off; SRGAN's GAN
stage without it is the paper's SRGAN-MSE variant.

**Data**: LR/HR pairs of :mod:`trainer.data.superres` (bicubic, or Real-ESRGAN's
degradations), from ``photos_dir`` when the config names one. Every random draw (the pairs)
comes from the global generator the loop seeds per step, so a resumed run repeats the
uninterrupted one exactly; there is no state beyond networks and optimisers.

**Evaluation** on the held-aside photos' fixed pairs (:mod:`trainer.evaluation.superres`):
PSNR / SSIM on Y with a 4-px shave, and the gradient-energy sharpness ratio, for G and for
bicubic upscaling.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.training import ESRGANConfig, SRGANConfig, SuperResolutionConfig
from trainer.archs import build_network
from trainer.data import DATASETS, Sample, Split, TrainingDataset, build_dataset, collate
from trainer.distributed import unwrap
from trainer.evaluation import bicubic_upscale, superres_figures
from trainer.losses import build_gan_loss, perceptual_loss_or_none
from trainer.recipes import RECIPES
from trainer.recipes.base import Recipe
from trainer.weights.errors import WeightImportError

SCALE = 4
SAMPLE_ROWS = 4


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (the datasets') → [0, 1] (the SR generators')."""
    return (images + 1) / 2


def from_unit(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] → [-1, 1]."""
    return images * 2 - 1


def initial_state(
    config: SuperResolutionConfig, checkpoint_dir: Path | None
) -> dict[str, torch.Tensor] | None:
    """The state_dict G starts from: ``init_weights`` or ``init_model``'s weights, or None.

    Raises:
        WeightImportError: the file is missing, or the model serves another architecture.
    """
    if config.init_model is not None:
        from trainer.catalog import card
        from trainer.weights.loader import load_weights

        model_card = card(config.init_model)
        if model_card.architecture != config.generator:
            raise WeightImportError(
                f"init_model {config.init_model} is a {model_card.architecture}; this run "
                f"trains {config.generator}"
            )
        return load_weights(model_card)
    if config.init_weights is None:
        return None
    path = config.init_weights
    if not path.is_absolute() and checkpoint_dir is not None:
        path = checkpoint_dir / path
    if not path.is_file():
        raise WeightImportError(f"init_weights {path} is not a file (a run's generator.pth)")
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


class SuperResolutionRecipe(Recipe):
    """The two-stage x4 SR training both families share; they differ in config defaults."""

    config: SuperResolutionConfig

    def build(self) -> None:
        cfg = self.config
        g = build_network(cfg.generator)
        state = initial_state(cfg, self.run_dir.parent if self.run_dir else None)
        if state is not None:
            try:
                g.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise WeightImportError(
                    f"G's initial weights do not fit {cfg.generator}: {exc}"
                ) from exc
            self.notes.append(f"G starts from {cfg.init_model or cfg.init_weights}")
        self.add("generator", g, self.adam(g))
        self.pixel = F.l1_loss if cfg.pixel_loss == "l1" else F.mse_loss
        self.perceptual: nn.Module | None = None
        if cfg.stage == "gan":
            d = build_network(cfg.discriminator, input_size=cfg.data.size)
            self.add("discriminator", d, self.adam(d))
            self.gan_loss = build_gan_loss(cfg.gan_loss)
            perceptual, note = perceptual_loss_or_none(
                cfg.perceptual_weights,
                layer_weights={cfg.perceptual_layer: 1.0},
                value_range=(0.0, 1.0),
            )
            self.notes.append(note)
            self.perceptual = perceptual.to(self.device) if perceptual is not None else None
        size = cfg.data.size
        self._train = self._dataset("train", size)
        val = self._dataset("val", size)
        held = [val.sample(i) for i in range(min(cfg.data.val_images, len(val)))]
        if not held or not {"lr", "hr"} <= set(held[0]):
            raise TypeError(f"{cfg.recipe} needs lr/hr pairs; {cfg.data.dataset} has none")
        self._val = {k: v.to(self.device) for k, v in collate(held).items()}

    def _dataset(self, split: Split, size: int) -> TrainingDataset:
        """The config's dataset, from ``photos_dir`` when it names one."""
        cfg = self.config
        if cfg.photos_dir is None:
            return build_dataset(cfg.data.dataset, self.data_dir, split, size)
        return DATASETS.get(cfg.data.dataset).build(cfg.photos_dir, split, size)

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.generator

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        cfg = self.config
        g = self.networks["generator"]
        lr, hr = to_unit(batch["lr"]), to_unit(batch["hr"])
        with self.autocast():
            sr = g(lr)
        pixel = self.pixel(sr.float(), hr)
        if cfg.stage == "psnr":
            self.optimize("generator", pixel)
            return {"g_pixel": pixel.item()}

        # 1. G, with D frozen: pixel + perceptual + adversarial.
        d = self.networks["discriminator"]
        self.set_requires_grad(False, "discriminator")
        with self.autocast():
            fake_logits = d(sr).float()
            real_logits = d(hr).float() if self.gan_loss.generator_needs_real else None
        g_adv = self.gan_loss.generator(fake_logits, real_logits)
        g_loss = cfg.lambda_pixel * pixel + cfg.lambda_adv * g_adv
        losses = {"g_pixel": pixel.item(), "g_adv": g_adv.item()}
        if self.perceptual is not None:
            perceptual = self.perceptual(sr.float(), hr)
            g_loss = g_loss + cfg.lambda_perceptual * perceptual
            losses["g_perceptual"] = perceptual.item()
        self.optimize("generator", g_loss)
        self.set_requires_grad(True, "discriminator")

        # 2. D on the real batch and the same G output.
        with self.autocast():
            d_loss = self.gan_loss.discriminator(d(hr).float(), d(sr.detach()).float())
        self.optimize("discriminator", d_loss)
        losses["d_adv"] = d_loss.item()
        return losses

    @torch.no_grad()
    def upscale(self, generator: nn.Module, lr: torch.Tensor) -> torch.Tensor:
        """G's output for LR images in [-1, 1], in [-1, 1]."""
        return from_unit(generator(to_unit(lr)).float()).clamp(-1, 1)

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """PSNR / SSIM (Y, 4-px shave) and the sharpness ratio of G and of bicubic on the
        held-aside pairs (see :mod:`trainer.evaluation.superres`)."""
        lr, hr = self._val["lr"], self._val["hr"]
        return superres_figures(self.upscale(generator, lr), lr, hr, SCALE)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside pair: the LR (nearest x4), bicubic, G's output, the HR truth."""
        device = next(unwrap(generator).parameters()).device
        lr = self._val["lr"][:SAMPLE_ROWS].to(device)
        upscaled = self.upscale(generator, lr).cpu()
        nearest = F.interpolate(lr, scale_factor=float(SCALE), mode="nearest").cpu()
        bicubic = bicubic_upscale(lr, SCALE).cpu()
        hr = self._val["hr"][:SAMPLE_ROWS].cpu()
        return [list(row) for row in zip(nearest, bicubic, upscaled, hr, strict=True)]


@RECIPES.register("srgan")
class SRGANRecipe(SuperResolutionRecipe):
    """SRResNet (MSE) then SRGAN (MSE or VGG54 + 1e-3 non-saturating adversarial)."""

    config_type = SRGANConfig
    config: SRGANConfig


@RECIPES.register("esrgan")
class ESRGANRecipe(SuperResolutionRecipe):
    """RRDBNet (L1) then ESRGAN (1e-2 L1 + VGG19 conv5_4 + RaGAN)."""

    config_type = ESRGANConfig
    config: ESRGANConfig
