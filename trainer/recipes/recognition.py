"""Face recognition: a small embedder trained with one of the losses of
:mod:`trainer.losses.recognition`, on the ORL people not held aside.

Networks: the embedder (``generator_key``: what a run evaluates and saves) and the loss head
(the class weights of the margin softmaxes, the centre-loss classifier; none for the triplet
loss). One Adam updates both. **A loop step** embeds a batch of jittered ORL crops (random
identities: with 23 people and 32 faces a step, most faces have another of their person in the
batch, which the triplet loss's batch-hard mining needs) and minimises the loss. The jitter
comes from the global generator the loop seeds per step, and the annealed margins count
their iterations in a buffer, so a resumed run repeats the uninterrupted one exactly.

**Evaluation**: verification on every pair of the held-aside ORL people (``val``) and of the
Yale faces (``yale``, evaluation only), at the threshold chosen on the training people's pairs
(:mod:`trainer.evaluation.recognition`).
"""

from __future__ import annotations

import torch
from torch import nn

from gantry.core.training import RecognitionConfig
from trainer.archs import build_network
from trainer.data import Sample, TrainingDataset
from trainer.data.identities import IdentityFaces, yale_faces
from trainer.distributed import unwrap
from trainer.evaluation.recognition import verification_figures
from trainer.losses.recognition import build_recognition_loss
from trainer.recipes import RECIPES
from trainer.recipes.base import Recipe

SAMPLE_ROWS = 4


@RECIPES.register("recognition")
class RecognitionRecipe(Recipe):
    """An embedder under a recognition loss, measured on people it never saw."""

    config_type = RecognitionConfig
    config: RecognitionConfig

    def build(self) -> None:
        cfg = self.config
        size = cfg.data.size
        train, val = self.splits(IdentityFaces, "faces labelled by identity")
        embedder = build_network(cfg.network, size=size, embedding_dim=cfg.embedding_dim)
        head = build_recognition_loss(
            cfg.loss, cfg.embedding_dim, train.classes, **cfg.loss_options
        )
        self.add("generator", embedder, None)
        self.add("head", head, None)
        params = [*embedder.parameters(), *head.parameters()]
        optim = cfg.optim
        self.add_optimizer(
            "generator",
            torch.optim.Adam(
                params, lr=optim.lr, betas=(optim.beta1, optim.beta2), weight_decay=cfg.weight_decay
            ),
        )
        self._train = train
        self._clean_train = {
            k: v.to(self.device)
            for k, v in IdentityFaces(train.images, train.labels, size, jitter=False)
            .batch()
            .items()
        }
        self._sets = {
            "val": {k: v.to(self.device) for k, v in val.batch().items()},
            "yale": {
                k: v.to(self.device) for k, v in yale_faces(self.data_dir, size).batch().items()
            },
        }

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.network

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        embedder, head = self.networks["generator"], self.networks["head"]
        with self.autocast():
            embeddings = embedder(batch["image"])
        loss, _ = head(embeddings.float(), batch["label"])
        self.optimize("generator", loss)
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        return verification_figures(generator, self._clean_train, self._sets)

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside person: their first faces (what the embedder is measured on)."""
        val = self._sets["val"]
        device = next(unwrap(generator).parameters()).device
        rows = []
        for label in val["label"].unique()[:SAMPLE_ROWS]:
            faces = val["image"][val["label"] == label][:4].to(device)
            rows.append(list(faces))
        return rows
