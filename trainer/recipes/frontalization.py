"""What the two frontalization recipes (CAPG-GAN, TP-GAN) share: the pose pairs, the frozen
embedder of the identity-preserving loss, and the evaluation.

The data (:mod:`trainer.data.frontalization`) pairs a face at a source pose with the frontal
image of the same person aligned onto the frontal template; a generator reads the source
crop and its 68 points and answers the frontal chip. The identity loss is 1 - cosine
between the embeddings of the output and of the truth (:class:`ChipEmbedder` over the
config's ``identity_model``; its gradients reach only the generator).

**Evaluation** on the held-aside people's non-frontal sources (see
:mod:`trainer.evaluation.frontalization`): L1 to the truth, identity similarity of the
frontalized and the unfrontalized face to the served embedding of the true frontal image,
and profile-vs-frontal verification AUC with and without frontalization.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gantry.core.training import FrontalizationConfig
from trainer.data import Sample, TrainingDataset, collate
from trainer.data.frontalization import FRONTAL_TEMPLATE, PosePairs
from trainer.distributed import unwrap
from trainer.evaluation.frontalization import (
    ChipEmbedder,
    frontalization_figures,
    served_embeddings,
)
from trainer.losses import identity_feature_loss, multiscale_l1, total_variation
from trainer.recipes.base import Recipe
from trainer.weights.loader import pretrained_network

SAMPLE_ROWS = 4


class FrontalizationRecipe(Recipe):
    """Pose pairs in, frontal chips out; subclasses build the networks and the step."""

    config: FrontalizationConfig

    def frontalize(
        self, generator: nn.Module, image: torch.Tensor, points: torch.Tensor
    ) -> torch.Tensor:
        """The served frontalization of (N, 1, S, S) crops with their (N, 68, 2) points."""
        output: torch.Tensor = generator(image, points)
        return output

    def build_data(self) -> PosePairs:
        """Load both splits, the identity embedder and what evaluation compares against;
        returns the training pairs."""
        cfg = self.config
        size = cfg.data.size
        train, val = self.splits(PosePairs, "pose pairs")
        self._train = train
        network, embedder_card = pretrained_network(cfg.identity_model)
        self.embedder = ChipEmbedder(network, embedder_card, FRONTAL_TEMPLATE, size).to(self.device)
        profiles = [i for i, (s, _) in enumerate(val.pairs) if s.pose != "forward"]
        held = profiles[: cfg.data.val_images]
        self._val = {
            k: v.to(self.device) for k, v in collate([val.sample(i) for i in held]).items()
        }
        sources = [val.pairs[i][0] for i in held]
        truths = [val.pairs[i][1] for i in held]
        self._served = {
            name: served_embeddings(
                network,
                embedder_card,
                [f.grey for f in faces],
                np.stack([f.detector_points for f in faces]),
            )
            for name, faces in (("source", sources), ("truth", truths))
        }
        return train

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return str(getattr(self.config, "generator"))  # noqa: B009 (each subclass has one)

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """L1 to the truth and the identity figures on the held-aside profiles."""
        image, points, target = self._val["image"], self._val["points"], self._val["target"]
        output = self.frontalize(generator, image, points).float()
        figures = frontalization_figures(
            unfrontalized=self._served["source"],
            frontalized=self.embedder(output).cpu(),
            truth_chips=self.embedder(target).cpu(),
            reference=self._served["truth"],
            labels=self._val["label"].cpu(),
        )
        return {"l1": float((output - target).abs().mean()), **figures}

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside profile: the input crop, the frontalization, the frontal truth."""
        device = next(unwrap(generator).parameters()).device
        image = self._val["image"][:SAMPLE_ROWS].to(device)
        points = self._val["points"][:SAMPLE_ROWS].to(device)
        output = self.frontalize(generator, image, points).float()
        target = self._val["target"][:SAMPLE_ROWS]
        return [
            [t.expand(3, -1, -1) for t in row] for row in zip(image, output, target, strict=True)
        ]


def synthesis_terms(
    embedder: nn.Module, fake: torch.Tensor, target: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The generator terms both recipes share: the multi-scale L1 to the truth, the identity
    loss (1 - cosine of ``embedder``'s features, the truth's without gradient) and TV."""
    with torch.no_grad():
        truth = embedder(target)
    return {
        "pixel": multiscale_l1(fake, target),
        "identity": identity_feature_loss(embedder(fake), truth),
        "tv": total_variation(fake),
    }


def sample_batch(batch: Sample) -> tuple[torch.Tensor, ...]:
    """(image, points, target, target_points) of a batch."""
    return batch["image"], batch["points"], batch["target"], batch["target_points"]
