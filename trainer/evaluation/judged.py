"""What every evaluator of translations without paired truth shares: a classifier trained
on the real training faces judges the outputs, and dlib's descriptor says whether the person
stays. Both are made on first use, so a process that never evaluates never pays for them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from trainer.evaluation.identity import IdentityProbe


class JudgedEvaluator(ABC):
    """A lazily trained (or cached) classifier and an :class:`IdentityProbe`.

    Args:
        load_embedder: returns the dlib ResNet with its weights, in eval mode.
        cache_dir: where the classifier's weights are cached (None: not cached).
        device: where the networks run.
    """

    def __init__(
        self,
        *,
        load_embedder: Callable[[], nn.Module],
        cache_dir: Path | None,
        device: torch.device | None,
    ) -> None:
        self.cache_dir = cache_dir
        self.device = device or torch.device("cpu")
        self.identity = IdentityProbe(load_embedder, self.device)
        self._classifier: nn.Module | None = None

    @abstractmethod
    def train_classifier(self) -> nn.Module:
        """The classifier of this evaluator's classes, trained on real training faces (or
        read from ``cache_dir``)."""

    @property
    def classifier(self) -> nn.Module:
        """The classifier (trained on first use)."""
        if self._classifier is None:
            self._classifier = self.train_classifier()
        return self._classifier
