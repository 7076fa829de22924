"""Measures of an attribute swapper (GeneGAN) on held-aside faces, without paired truth: does
the swap add or remove the attribute, and is it still the same person?

The swapper is a module ``swap(image, donor)``: ``image`` takes ``donor``'s attribute part.
The held-aside faces with the attribute (``Au``) and without (``B0``) are paired in order,
``Au[i]`` with ``B0[i]``, and swapped both ways: ``Bu = swap(B0, Au)`` (B0 given Au's
attribute) and ``A0 = swap(Au, B0)`` (Au given B0's attribute part, which training drives to
zero).

* **Did the attribute move?** A two-set :class:`~trainer.evaluation.domain_classifier.
  DomainClassifier` trained on the real training faces without (0) and with (1) the
  attribute judges the swaps: ``val_attr_added_acc`` is the share of ``Bu`` it says have the
  attribute, ``val_attr_removed_acc`` the share of ``A0`` it says lack it.
  ``classifier_real_acc`` is its balanced accuracy on all held-aside real faces, the ceiling
  of what it can tell; a swapper that copies its input scores about ``1 -
  classifier_real_acc`` on both.
* **Is it the same person?** ``val_identity_cos`` is the mean dlib-descriptor cosine
  (:mod:`trainer.evaluation.identity`) between each swap and its source face (``Bu`` and
  ``B0``, ``A0`` and ``Au``; ``val_identity_cos_added`` and ``_removed`` each way);
  ``identity_cos_other_people`` is the same cosine between neighbouring held-aside faces of
  each set, the floor an identity-destroying swapper sits near.
* ``val_rec_l1`` is the mean absolute error, in [-1, 1] units, of ``swap(x, x)`` against
  ``x`` over both sets: the reconstruction GeneGAN trains, on faces it never saw.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from trainer.evaluation.attribute_translation import translate_to
from trainer.evaluation.domain_classifier import cached_domain_classifier, predicts_b
from trainer.evaluation.identity import other_people_cosine
from trainer.evaluation.judged import JudgedEvaluator


class AttributeSwapEvaluator(JudgedEvaluator):
    """Attribute added and removed, identity kept and reconstruction, for ``swap(image, donor)``.

    The classifier (trained, or read from ``cache_dir``) and the embedder are made on the
    first call, so a process that never evaluates never pays for them; the descriptors of
    the held-aside faces are computed once.

    Args:
        train_with: real training faces with the attribute, (N, 3, H, W), uint8 or float in
            [-1, 1].
        train_without: real training faces without it.
        val_with: held-aside faces with the attribute, (M, 3, H, W) in [-1, 1].
        val_without: held-aside faces without it.
        count: the pairs swapped (the first ``count`` of each held-aside set; the
            classifier's accuracy uses them all).
        load_embedder: returns the dlib ResNet with its weights, in eval mode.
        cache_dir: where the classifier's weights are cached (None: not cached).
        device: where the networks run.

    Raises:
        ValueError: a held-aside set has fewer than ``count`` faces.
    """

    def __init__(
        self,
        train_with: torch.Tensor,
        train_without: torch.Tensor,
        val_with: torch.Tensor,
        val_without: torch.Tensor,
        *,
        count: int,
        load_embedder: Callable[[], nn.Module],
        cache_dir: Path | None = None,
        device: torch.device | None = None,
    ) -> None:
        if count < 1 or count > min(len(val_with), len(val_without)):
            raise ValueError(
                f"count {count} must be in 1..{min(len(val_with), len(val_without))}, the "
                "smaller held-aside set"
            )
        self.train_with, self.train_without = train_with, train_without
        self.val_with, self.val_without = val_with, val_without
        self.count = count
        super().__init__(load_embedder=load_embedder, cache_dir=cache_dir, device=device)

    def train_classifier(self) -> nn.Module:
        """The with/without classifier; a logit above 0 says "with"."""
        return cached_domain_classifier(
            self.train_without, self.train_with, self.cache_dir, device=self.device
        )

    def real_accuracy(self) -> float:
        """Balanced accuracy of the classifier on all held-aside real faces."""
        with_acc = predicts_b(self.classifier, self.val_with).float().mean()
        without_acc = 1 - predicts_b(self.classifier, self.val_without).float().mean()
        return float((with_acc + without_acc) / 2)

    def __call__(self, swap: nn.Module) -> dict[str, float]:
        """The figures for ``swap`` (eval mode)."""
        au, b0 = self.val_with[: self.count], self.val_without[: self.count]
        au_directions = self.identity.sources("with", au)
        b0_directions = self.identity.sources("without", b0)
        others = torch.cat([other_people_cosine(au_directions), other_people_cosine(b0_directions)])
        bu = translate_to(swap, b0, au, self.device)
        a0 = translate_to(swap, au, b0, self.device)
        added = self.identity.kept(b0_directions, bu)
        removed = self.identity.kept(au_directions, a0)
        rec_errors = [
            (translate_to(swap, x, x, self.device) - x).abs().mean(dim=(1, 2, 3)) for x in (au, b0)
        ]
        return {
            "classifier_real_acc": self.real_accuracy(),
            "identity_cos_other_people": float(others.mean()),
            "val_attr_added_acc": float(predicts_b(self.classifier, bu).float().mean()),
            "val_attr_removed_acc": float(1 - predicts_b(self.classifier, a0).float().mean()),
            "val_identity_cos": float(torch.cat([added, removed]).mean()),
            "val_identity_cos_added": float(added.mean()),
            "val_identity_cos_removed": float(removed.mean()),
            "val_rec_l1": float(torch.cat(rec_errors).mean()),
        }
