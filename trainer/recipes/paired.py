"""What the paired families (pix2pix, pix2pixHD) share: held-aside pairs, the mean-photo
baseline, and the optional VGG term."""

from __future__ import annotations

import torch

from gantry.core.training import PerceptualTerm, TrainConfig
from trainer.data import TrainingDataset, build_dataset, collate
from trainer.losses import VGGPerceptualLoss, perceptual_loss_or_none
from trainer.recipes.base import Recipe


class PairedRecipe(Recipe):
    """A recipe on a paired dataset (``input``/``target`` samples, a ``val`` split)."""

    def load_pairs(self) -> None:
        """``_train`` (the dataset), ``_val`` (the held-aside pairs, batched, on the device)
        and ``_mean_target``: the mean training photo, the baseline a trained G must beat
        (what a G that ignores its input scores at best)."""
        cfg: TrainConfig = self.config
        size = cfg.data.size
        self._train = build_dataset(cfg.data.dataset, self.data_dir, "train", size)
        val = build_dataset(cfg.data.dataset, self.data_dir, "val", size)
        held = [val.sample(i) for i in range(min(cfg.data.val_images, len(val)))]
        self._val = {k: v.to(self.device) for k, v in collate(held).items()}
        targets = torch.stack([self._train.sample(i)["target"] for i in range(len(self._train))])
        self._mean_target = targets.mean(0, keepdim=True).to(self.device)

    def perceptual_term(self, config: PerceptualTerm) -> VGGPerceptualLoss | None:
        """The VGG19 loss when the config names a weights file; the run's notes say which."""
        perceptual, note = perceptual_loss_or_none(config.perceptual_weights)
        self.notes.append(note)
        return perceptual.to(self.device) if perceptual is not None else None

    def train_dataset(self) -> TrainingDataset:
        return self._train
