"""Face-recognition losses: softmax heads with angular or cosine margins, the triplet loss with
online hard mining, and the center loss; registered by name in :data:`RECOGNITION_LOSSES`.

Every loss is a module ``loss(embeddings, labels) -> (loss, logits or None)`` built with
``(embedding_dim, classes, **options)``; the heads own their class weights ``W`` (one row per
training identity). With ``theta_j`` the angle between an embedding ``x`` and ``W_j`` and
``y`` its identity:

* ``norm_softmax`` (NormFace, Wang et al. 2017): logits ``s cos(theta_j)``, weights and
  features L2-normalised.
* ``l_softmax`` (Liu et al. 2016): the target logit ``|W_y||x| psi(theta_y)`` with
  ``psi(t) = (-1)^k cos(m t) - 2k`` on ``[k pi/m, (k+1) pi/m]``, neither normalised; mixed with
  the plain logit as ``(lambda plain + margin) / (1 + lambda)``, lambda annealed from ``base``
  to ``lambda_min`` as ``base (1 + gamma step)^-power`` (the authors' schedule).
* ``sphereface`` (A-Softmax, Liu et al. 2017): as L-Softmax with the weights normalised
  (``|x| psi(theta_y)``), m = 4, the same annealing.
* ``cosface`` (Wang et al. 2018): ``s (cos(theta_y) - m)``.
* ``arcface`` (Deng et al. 2019): ``s cos(theta_y + m)``; where ``theta_y + m > pi`` (so the
  margin would raise the logit), insightface's fallback ``cos(theta_y) - m sin(m)`` keeps it
  decreasing in theta.
* ``combined`` (insightface's combined margin): ``s (cos(m1 theta_y + m2) - m3)``, with the
  same fallback past pi.
* ``triplet`` (FaceNet; batch-hard mining, Hermans et al. 2017): for each anchor, the farthest
  positive and the nearest negative of the batch on the unit sphere, hinge at ``margin``.
* ``center`` (Wen et al. 2016): softmax plus ``lambda/2 |x - c_y|^2``; the centres move
  towards their class means at rate ``alpha`` outside the gradient (as the paper updates them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.registry import Registry

LossOutput = tuple[torch.Tensor, torch.Tensor | None]
RECOGNITION_LOSSES: Registry[Callable[..., nn.Module]] = Registry("recognition loss")


class _ClassWeights(nn.Module):
    """A head with one weight row per training identity (Xavier-initialised)."""

    def __init__(self, embedding_dim: int, classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosines(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x), F.normalize(self.weight)).clamp(-1.0, 1.0)


def _with_target(logits: torch.Tensor, labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits`` with each row's true-class entry replaced by ``target``."""
    one_hot = F.one_hot(labels, logits.shape[1]).bool()
    return torch.where(one_hot, target[:, None], logits)


def _true(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return values.gather(1, labels[:, None])[:, 0]


@RECOGNITION_LOSSES.register("norm_softmax")
class NormSoftmax(_ClassWeights):
    def __init__(self, embedding_dim: int, classes: int, s: float = 30.0) -> None:
        super().__init__(embedding_dim, classes)
        self.s = s

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        logits = self.s * self.cosines(x)
        return F.cross_entropy(logits, labels), logits


def psi(theta: torch.Tensor, m: int) -> torch.Tensor:
    """L-Softmax's ``(-1)^k cos(m theta) - 2k``, k the interval of ``theta`` in [0, pi]."""
    k = torch.floor(theta * m / math.pi).clamp(0, m - 1)
    sign = 1.0 - 2.0 * torch.remainder(k, 2)
    return sign * torch.cos(m * theta) - 2.0 * k


class _AnnealedMargin(_ClassWeights):
    """L-Softmax and A-Softmax: a multiplicative angular margin, annealed in by lambda."""

    normalise_weights = False

    def __init__(
        self,
        embedding_dim: int,
        classes: int,
        m: int = 4,
        base: float = 1000.0,
        gamma: float = 0.12,
        power: float = 1.0,
        lambda_min: float = 5.0,
    ) -> None:
        super().__init__(embedding_dim, classes)
        self.m, self.base, self.gamma, self.power, self.lambda_min = (
            m,
            base,
            gamma,
            power,
            lambda_min,
        )
        self.iteration: torch.Tensor
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def annealing(self) -> float:
        """lambda at the current iteration: ``max(lambda_min, base (1 + gamma it)^-power)``."""
        it = float(self.iteration)
        return max(self.lambda_min, self.base * (1.0 + self.gamma * it) ** -self.power)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        weight = F.normalize(self.weight) if self.normalise_weights else self.weight
        logits = F.linear(x, weight)
        norms = x.norm(dim=1) * weight.norm(dim=1)[labels]
        cos = (_true(logits, labels) / norms.clamp_min(1e-12)).clamp(-1.0, 1.0)
        margin = norms * psi(torch.acos(cos), self.m)
        lam = self.annealing()
        target = (lam * _true(logits, labels) + margin) / (1.0 + lam)
        if self.training:
            self.iteration += 1
        mixed = _with_target(logits, labels, target)
        return F.cross_entropy(mixed, labels), logits


@RECOGNITION_LOSSES.register("l_softmax")
class LSoftmax(_AnnealedMargin):
    def __init__(self, embedding_dim: int, classes: int, m: int = 2, **options: Any) -> None:
        super().__init__(embedding_dim, classes, m=m, **options)


@RECOGNITION_LOSSES.register("sphereface")
class SphereFace(_AnnealedMargin):
    normalise_weights = True


@RECOGNITION_LOSSES.register("cosface")
class CosFace(_ClassWeights):
    def __init__(self, embedding_dim: int, classes: int, s: float = 30.0, m: float = 0.35) -> None:
        super().__init__(embedding_dim, classes)
        self.s, self.m = s, m

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        cos = self.cosines(x)
        logits = _with_target(cos, labels, _true(cos, labels) - self.m)
        return F.cross_entropy(self.s * logits, labels), self.s * cos


def combined_margin(cos: torch.Tensor, m1: float, m2: float, m3: float) -> torch.Tensor:
    """``cos(m1 theta + m2) - m3`` where ``m1 theta + m2 <= pi``; past pi, insightface's
    ``cos(theta) - m3 - m2 sin(m2)`` (for m1 = 1) keeps the target falling with theta."""
    theta = torch.acos(cos)
    inside = m1 * theta + m2 <= math.pi
    margin = torch.cos(m1 * theta + m2) - m3
    fallback = cos - m3 - m2 * math.sin(m2)
    return torch.where(inside, margin, fallback)


@RECOGNITION_LOSSES.register("arcface")
class ArcFace(_ClassWeights):
    def __init__(self, embedding_dim: int, classes: int, s: float = 30.0, m: float = 0.5) -> None:
        super().__init__(embedding_dim, classes)
        self.s, self.m = s, m

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        cos = self.cosines(x)
        target = combined_margin(_true(cos, labels), 1.0, self.m, 0.0)
        return F.cross_entropy(self.s * _with_target(cos, labels, target), labels), self.s * cos


@RECOGNITION_LOSSES.register("combined")
class CombinedMargin(_ClassWeights):
    def __init__(
        self,
        embedding_dim: int,
        classes: int,
        s: float = 30.0,
        m1: float = 1.0,
        m2: float = 0.3,
        m3: float = 0.2,
    ) -> None:
        super().__init__(embedding_dim, classes)
        self.s, self.m1, self.m2, self.m3 = s, m1, m2, m3

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        cos = self.cosines(x)
        target = combined_margin(_true(cos, labels), self.m1, self.m2, self.m3)
        return F.cross_entropy(self.s * _with_target(cos, labels, target), labels), self.s * cos


@RECOGNITION_LOSSES.register("triplet")
class BatchHardTriplet(nn.Module):
    """Batch-hard triplet loss on unit embeddings (no class weights: ``classes`` unused)."""

    def __init__(self, embedding_dim: int, classes: int, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        unit = F.normalize(x)
        distance = torch.cdist(unit, unit)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=x.device)
        positives = same & ~eye
        hardest_positive = torch.where(positives, distance, torch.zeros_like(distance)).amax(1)
        hardest_negative = torch.where(same, torch.full_like(distance, 4.0), distance).amin(1)
        valid = positives.any(1) & (~same).any(1)
        if not bool(valid.any()):
            return x.sum() * 0.0, None
        hinge = F.relu(hardest_positive - hardest_negative + self.margin)
        return hinge[valid].mean(), None


@RECOGNITION_LOSSES.register("center")
class CenterLoss(nn.Module):
    """Softmax (a plain linear classifier) plus ``lambda/2 |x - c_y|^2`` per embedding."""

    def __init__(
        self, embedding_dim: int, classes: int, lambda_c: float = 0.01, alpha: float = 0.5
    ) -> None:
        super().__init__()
        self.classifier = nn.Linear(embedding_dim, classes)
        self.lambda_c, self.alpha = lambda_c, alpha
        self.centres: torch.Tensor
        self.register_buffer("centres", torch.zeros(classes, embedding_dim))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        logits = self.classifier(x)
        pull = 0.5 * (x - self.centres[labels]).pow(2).sum(1).mean()
        if self.training:
            with torch.no_grad():  # the paper's centre update, outside back-propagation
                for label in labels.unique():
                    mine = labels == label
                    delta = (self.centres[label] - x[mine]).sum(0) / (1 + int(mine.sum()))
                    self.centres[label] -= self.alpha * delta
        return F.cross_entropy(logits, labels) + self.lambda_c * pull, logits


def build_recognition_loss(
    name: str, embedding_dim: int, classes: int, **options: Any
) -> nn.Module:
    """The loss ``name`` for ``classes`` identities (the error lists the known names)."""
    return RECOGNITION_LOSSES.get(name)(embedding_dim, classes, **options)
