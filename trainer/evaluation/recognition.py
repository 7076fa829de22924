"""Verification figures of a face embedder on identities it never trained on.

Every pair of a set's faces is scored by the cosine of their embeddings; the figures are the
ROC AUC, the TAR at a FAR of 1% and the accuracy at a threshold chosen on the *training*
people's pairs (Youden's J: the best balanced accuracy there), as a deployment would fix it
before seeing new people (:mod:`trainer.evaluation.verification`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from trainer.evaluation.verification import pair_stats, youden_threshold

FAR = 0.01


@torch.no_grad()
def embed(embedder: nn.Module, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Unit embeddings of (N, 3, H, W) images, in batches."""
    out = [
        F.normalize(embedder(images[i : i + batch]).float()) for i in range(0, len(images), batch)
    ]
    return torch.cat(out)


def pair_scores(
    vectors: torch.Tensor, labels: torch.Tensor
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(cosine of every unordered pair, whether it is one person)."""
    i, j = torch.triu_indices(len(labels), len(labels), offset=1)
    scores = (vectors[i] * vectors[j]).sum(1).double().cpu().numpy()
    same = (labels[i] == labels[j]).cpu().numpy()
    return scores, same


def verification_figures(
    embedder: nn.Module,
    train: dict[str, torch.Tensor],
    sets: dict[str, dict[str, torch.Tensor]],
) -> dict[str, float]:
    """``<set>_auc``, ``<set>_tar_far1`` and ``<set>_accuracy`` of each evaluation set, at
    the threshold Youden's J picks on the training people's pairs (``threshold``)."""
    scores, same = pair_scores(embed(embedder, train["image"]), train["label"])
    threshold = youden_threshold(scores, same)
    figures = {"threshold": threshold}
    for name, faces in sets.items():
        scores, same = pair_scores(embed(embedder, faces["image"]), faces["label"])
        stats = pair_stats(scores, same, threshold, far=FAR)
        figures[f"{name}_auc"] = stats.auc
        figures[f"{name}_tar_far1"] = stats.tar_at_far
        figures[f"{name}_accuracy"] = stats.accuracy
    return figures
