"""Measures of a multi-domain face translator (StarGAN) on held-aside faces, without paired
truth: did the asked-for attribute change, and is it still the same person?

The translator is a generator ``G(x, c)`` asked, for each held-aside face and each selected
attribute ``i``, for the target vector ``targets[i]`` (yunjey's ``create_labels``: hair
colour ``i`` set and the other hair colours cleared, or attribute ``i`` toggled).

* **Did the attribute change?** An attribute classifier (one logit per attribute,
  :func:`~trainer.evaluation.domain_classifier.train_attribute_classifier`) trained on the
  real training faces judges each translation. ``val_target_attr_acc_<attr>`` is the
  fraction of translations asked to change attribute ``i`` (its target differs from the
  face's label: asking a blond face for blond hair changes nothing and is not counted) that
  the classifier says have the target value of ``i``; ``val_target_attr_acc`` pools every
  such translation. ``classifier_real_acc_<attr>`` is the classifier's balanced accuracy on
  the held-aside real faces and ``classifier_real_acc`` their mean: the ceiling of what it
  can tell. A translator that copies its input scores about ``1 - classifier_real_acc`` (the
  classifier's mistakes).
* **Is it the same person?** ``val_identity_cos`` is the mean dlib-descriptor cosine
  (:mod:`trainer.evaluation.identity`) between each held-aside face and each of its
  translations; ``identity_cos_other_people`` is the same cosine between neighbouring
  held-aside faces, the floor an identity-destroying translator sits near.
* ``val_rec_l1`` is the mean absolute error, in [-1, 1] units, of ``G(G(x, c_trg), c_org)``
  against ``x``: the cycle that StarGAN's reconstruction loss trains, on faces it never saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from trainer.evaluation.domain_classifier import cached_attribute_classifier, predicts
from trainer.evaluation.identity import other_people_cosine
from trainer.evaluation.judged import JudgedEvaluator

BATCH = 32
Condition = Callable[[torch.Tensor], torch.Tensor]


def _as_is(labels: torch.Tensor) -> torch.Tensor:
    return labels


@torch.no_grad()
def translate_to(
    generator: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    batch_size: int = BATCH,
) -> torch.Tensor:
    """``generator(x, c)`` (eval mode, on ``device``) over (N, 3, H, W) images and (N, c)
    labels in batches; float32 on the CPU."""
    out = [
        generator(x.to(device), c.to(device)).float().cpu()
        for x, c in zip(images.split(batch_size), labels.split(batch_size), strict=True)
    ]
    return torch.cat(out)


def balanced_accuracy(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per column of (N, c) bool tensors: the mean of the true-positive and true-negative
    rates (a column without positives or negatives counts the rate it has)."""
    positives, negatives = truth.sum(0), (~truth).sum(0)
    tpr = (predicted & truth).sum(0) / positives.clamp(min=1)
    tnr = (~predicted & ~truth).sum(0) / negatives.clamp(min=1)
    both = (positives > 0) & (negatives > 0)
    return torch.where(both, (tpr + tnr) / 2, torch.where(positives > 0, tpr, tnr))


class AttributeTranslationEvaluator(JudgedEvaluator):
    """Target-attribute accuracy, identity kept and reconstruction, for ``G(x, c)``.

    The classifier (trained, or read from ``cache_dir``) and the embedder are made on the
    first call, so a process that never evaluates never pays for them; the descriptors of
    the held-aside faces are computed once.

    Args:
        train_faces: real training faces (N, 3, H, W), uint8 or float in [-1, 1].
        train_labels: their (N, c) 0/1 labels of the selected attributes.
        val_faces: held-aside faces (M, 3, H, W) in [-1, 1].
        val_labels: their (M, c) labels.
        names: the c attribute names (the figures' suffixes, lower-cased).
        targets: c tensors of (count, c) target labels for the first ``count`` held-aside
            faces, ``targets[i]`` asking for attribute ``i``.
        count: held-aside faces translated (the classifier's accuracy uses all M).
        load_embedder: returns the dlib ResNet with its weights, in eval mode.
        condition: maps (n, c) attribute labels to the generator's label input (StarGAN's
            mask-vector layout); the identity by default.
        cache_dir: where the classifier's weights are cached (None: not cached).
        device: where the networks run.
    """

    def __init__(
        self,
        train_faces: torch.Tensor,
        train_labels: torch.Tensor,
        val_faces: torch.Tensor,
        val_labels: torch.Tensor,
        *,
        names: Sequence[str],
        targets: Sequence[torch.Tensor],
        count: int,
        load_embedder: Callable[[], nn.Module],
        condition: Condition = _as_is,
        cache_dir: Path | None = None,
        device: torch.device | None = None,
    ) -> None:
        if len(targets) != len(names) or any(t.shape != (count, len(names)) for t in targets):
            raise ValueError(f"need {len(names)} target tensors of ({count}, {len(names)})")
        self.train_faces, self.train_labels = train_faces, train_labels
        self.val_faces, self.val_labels = val_faces, val_labels
        self.names = [n.lower() for n in names]
        self.targets = list(targets)
        self.count = count
        self.condition = condition
        super().__init__(load_embedder=load_embedder, cache_dir=cache_dir, device=device)

    def train_classifier(self) -> nn.Module:
        """The attribute classifier."""
        return cached_attribute_classifier(
            self.train_faces, self.train_labels, self.cache_dir, device=self.device
        )

    def _source_directions(self) -> torch.Tensor:
        return self.identity.sources("val", self.val_faces[: self.count])

    def real_accuracy(self) -> torch.Tensor:
        """Balanced accuracy per attribute on all held-aside real faces, (c,)."""
        return balanced_accuracy(predicts(self.classifier, self.val_faces), self.val_labels > 0.5)

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        """The figures for ``generator`` (eval mode): ``generator(x, condition(c))``."""
        real = self.real_accuracy()
        figures = {"classifier_real_acc": float(real.mean())}
        for name, accuracy in zip(self.names, real, strict=True):
            figures[f"classifier_real_acc_{name}"] = float(accuracy)
        sources = self.val_faces[: self.count]
        labels = self.val_labels[: self.count]
        directions = self._source_directions()
        figures["identity_cos_other_people"] = float(other_people_cosine(directions).mean())
        hits, cosines, rec_errors = [], [], []
        for i, target in enumerate(self.targets):
            translated = translate_to(generator, sources, self.condition(target), self.device)
            changed = target[:, i] != labels[:, i]
            said = predicts(self.classifier, translated)[:, i]
            hits.append((said == (target[:, i] > 0.5))[changed])
            cosines.append(self.identity.kept(directions, translated))
            back = translate_to(generator, translated, self.condition(labels), self.device)
            rec_errors.append((back - sources).abs().mean(dim=(1, 2, 3)))
        for name, hit in zip(self.names, hits, strict=True):
            # An attribute no held-aside face could be asked to change has no figure.
            if len(hit):
                figures[f"val_target_attr_acc_{name}"] = float(hit.float().mean())
        pooled = torch.cat(hits)
        if len(pooled):
            figures["val_target_attr_acc"] = float(pooled.float().mean())
        figures["val_identity_cos"] = float(torch.cat(cosines).mean())
        figures["val_rec_l1"] = float(torch.cat(rec_errors).mean())
        return figures
