"""Measures of an unpaired face translator A ↔ B on held-aside faces, without paired truth.

Two questions, each with its scale beside it:

* **Did the domain change?** A :class:`~trainer.evaluation.domain_classifier.DomainClassifier`
  trained on the real training faces of both domains judges the translations:
  ``val_domain_acc_a2b`` is the fraction of G_A(held-aside A) it calls B (and ``_b2a`` the
  reverse). ``classifier_real_acc`` is its balanced accuracy on the held-aside *real* faces of
  both domains, the ceiling of what it can tell.
* **Is it still the same person?** ``val_identity_cos_a2b`` is the mean cosine between the
  dlib ResNet descriptors of each held-aside A face and its translation
  (:mod:`trainer.evaluation.identity`); ``identity_cos_other_people`` is the same cosine
  between neighbouring held-aside faces of one domain (different images, as good as always
  different people: the subset has no identity labels), the floor an identity-destroying
  translator would sit near.

A translator that copies its input scores identity 1 and domain accuracy about
``1 - classifier_real_acc``; one that draws the average B face scores the reverse. Both
numbers together are the measure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from trainer.evaluation.domain_classifier import cached_domain_classifier, predicts_b
from trainer.evaluation.identity import other_people_cosine
from trainer.evaluation.judged import JudgedEvaluator

BATCH = 32


@torch.no_grad()
def translate(
    generator: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = BATCH
) -> torch.Tensor:
    """``generator`` (eval mode, on ``device``) applied to (N, 3, H, W) images in batches;
    float32 on the CPU."""
    out = [generator(chunk.to(device)).float().cpu() for chunk in images.split(batch_size)]
    return torch.cat(out)


class UnpairedTranslationEvaluator(JudgedEvaluator):
    """Domain accuracy and identity kept, for the two generators of an unpaired translator.

    The classifier (trained, or read from ``cache_dir``) and the embedder (built by
    ``load_embedder``) are made on the first call, so a process that never evaluates (a
    DDP rank other than 0) never pays for them; the descriptors of the held-aside faces are
    computed once.

    Args:
        train_a: real training faces of domain A, (N, 3, H, W), uint8 in [0, 255] or float
            in [-1, 1] (the classifier's training set).
        train_b: the same for domain B.
        val_a: held-aside faces of domain A, (M, 3, H, W) in [-1, 1] (never trained on).
        val_b: the same for domain B.
        count: how many held-aside faces per domain the translations are measured on (the
            classifier's own accuracy uses them all).
        load_embedder: returns the dlib ResNet with its weights, in eval mode.
        cache_dir: where the classifier's weights are cached (None: not cached).
        device: where the networks run.
    """

    def __init__(
        self,
        train_a: torch.Tensor,
        train_b: torch.Tensor,
        val_a: torch.Tensor,
        val_b: torch.Tensor,
        *,
        count: int,
        load_embedder: Callable[[], nn.Module],
        cache_dir: Path | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.train_a, self.train_b = train_a, train_b
        self.val_a, self.val_b = val_a, val_b
        self.count = count
        super().__init__(load_embedder=load_embedder, cache_dir=cache_dir, device=device)

    def train_classifier(self) -> nn.Module:
        """The domain classifier."""
        return cached_domain_classifier(
            self.train_a, self.train_b, self.cache_dir, device=self.device
        )

    def _source_directions(self, domain: str) -> torch.Tensor:
        faces = {"a": self.val_a, "b": self.val_b}[domain][: self.count]
        return self.identity.sources(domain, faces)

    def real_accuracy(self) -> float:
        """Balanced accuracy of the classifier on all held-aside real faces."""
        acc_a = 1 - predicts_b(self.classifier, self.val_a).float().mean()
        acc_b = predicts_b(self.classifier, self.val_b).float().mean()
        return float((acc_a + acc_b) / 2)

    def other_people_cosine(self) -> float:
        """Mean descriptor cosine of neighbouring held-aside faces, both domains."""
        cosines = [other_people_cosine(self._source_directions(d)) for d in ("a", "b")]
        return float(torch.cat(cosines).mean())

    def __call__(self, a2b: nn.Module, b2a: nn.Module) -> dict[str, float]:
        """The figures for generators ``a2b`` (G_A) and ``b2a`` (G_B), both in eval mode."""
        figures = {
            "classifier_real_acc": self.real_accuracy(),
            "identity_cos_other_people": self.other_people_cosine(),
        }
        for name, generator, domain, target_is_b in (
            ("a2b", a2b, "a", True),
            ("b2a", b2a, "b", False),
        ):
            sources = {"a": self.val_a, "b": self.val_b}[domain][: self.count]
            translated = translate(generator, sources, self.device)
            called_b = predicts_b(self.classifier, translated).float().mean()
            figures[f"val_domain_acc_{name}"] = float(called_b if target_is_b else 1 - called_b)
            cosine = self.identity.kept(self._source_directions(domain), translated)
            figures[f"val_identity_cos_{name}"] = float(cosine.mean())
        return figures
