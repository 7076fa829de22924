"""Verification metrics over scored pairs: accuracy, ROC AUC, TAR at a FAR, thresholds (the
recognition recipe's evaluation and bench/faces_calibrate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PairStats:
    """How well a similarity separates same-person from different-person pairs."""

    positives: int
    negatives: int
    auc: float
    accuracy: float  # at the given threshold, over all pairs
    balanced_accuracy: float  # mean of TPR and TNR at the threshold
    tar_at_far: float  # true accept rate at the FAR below
    far: float
    threshold: float

    def row(self, label: str) -> str:
        """A markdown table row."""
        return (
            f"| {label} | {self.positives} / {self.negatives} | {self.auc:.4f} | "
            f"{self.accuracy:.4f} | {self.balanced_accuracy:.4f} | "
            f"{self.tar_at_far:.4f} @ {self.far:.0%} | {self.threshold:.4f} |"
        )


HEADER = (
    "| pairs | same / different | ROC AUC | accuracy | balanced accuracy | TAR @ FAR | "
    "threshold |\n|---|---|---|---|---|---|---|"
)


def roc_auc(scores: NDArray[Any], same: NDArray[np.bool_]) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    pos, neg = scores[same], scores[~same]
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), float)
    ranks[order] = np.arange(1, len(order) + 1)
    merged = np.concatenate([pos, neg])
    # average ranks over ties
    for value in np.unique(merged):
        tied = merged == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def youden_threshold(scores: NDArray[Any], same: NDArray[np.bool_]) -> float:
    """The threshold maximising TPR - FPR (balanced accuracy), midway between scores."""
    candidates = np.unique(scores)
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[1:] + candidates[:-1]) / 2])
    pos, neg = np.sort(scores[same]), np.sort(scores[~same])
    tpr = 1 - np.searchsorted(pos, mids, side="left") / len(pos)
    fpr = 1 - np.searchsorted(neg, mids, side="left") / len(neg)
    return float(mids[int(np.argmax(tpr - fpr))])


def pair_stats(
    scores: NDArray[Any], same: NDArray[np.bool_], threshold: float, far: float = 0.01
) -> PairStats:
    """Metrics of ``scores`` (higher = same person) at ``threshold``."""
    pos, neg = scores[same], scores[~same]
    decided = scores >= threshold
    tpr = float((pos >= threshold).mean())
    tnr = float((neg < threshold).mean())
    # The smallest threshold whose false accept rate is at most `far`.
    k = int(np.floor(far * len(neg)))
    far_threshold = float(np.sort(neg)[::-1][k]) if k < len(neg) else float(neg.min())
    tar = float((pos > far_threshold).mean())
    return PairStats(
        positives=int(same.sum()),
        negatives=int((~same).sum()),
        auc=roc_auc(scores, same),
        accuracy=float((decided == same).mean()),
        balanced_accuracy=(tpr + tnr) / 2,
        tar_at_far=tar,
        far=far,
        threshold=threshold,
    )
