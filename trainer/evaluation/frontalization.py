"""Whether frontalization keeps the person: embeddings of frontalized and unfrontalized
faces against a true frontal of the same person.

The embedder is a served face embedder (``mobilefacenet-arcface`` by default: ArcFace
features, the strongest embedder here) in PyTorch with its card's weights, frozen. Two ways
into it:

- :class:`ChipEmbedder`: a grey chip aligned on the frontal template (a frontalizer's
  output, or the true frontal chip; :data:`trainer.data.frontalization.FRONTAL_TEMPLATE`)
  warped by one fixed similarity onto the embedder's template, differentiably
  (``F.grid_sample``): the identity-preserving loss of both frontalization recipes, and how
  a frontalized face is embedded when measured.
- :func:`served_embeddings`: a whole image aligned by RetinaFace's five points onto the
  embedder's template (what ``POST /v1/faces/embed`` does without frontalization).

The figures compare, over the held-aside people's pose pairs, the cosine of the served
embedding of the frontal truth with (a) the served embedding of the unfrontalized source
face, (b) the frontalizer's output, (c) the true frontal chip itself (the ceiling of the
64 px chip route); and the ROC AUC of profile-vs-frontal verification over all held-aside
source x frontal pairs, with and without frontalization.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from gantry.core.alignment import align_faces, similarity_transform
from gantry.core.cards import EmbeddingSpec, ModelCard
from gantry.core.preprocess import normalise
from trainer.evaluation.verification import roc_auc


def _normalised_from_pixels(width: int, height: int) -> NDArray[np.float64]:
    """3x3: cv2 pixel coordinates (centres at integers) → grid_sample's [-1, 1]
    (align_corners=False)."""
    return np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])


def warp_theta(
    source_points: NDArray[np.float64],
    source_size: int,
    target_points: NDArray[np.float64],
    target_size: int,
) -> torch.Tensor:
    """(2, 3) ``affine_grid`` theta that resamples a ``source_size`` square so its
    ``source_points`` land on ``target_points`` of a ``target_size`` square (pixels)."""
    forward = np.vstack([similarity_transform(source_points, target_points), [0, 0, 1]])
    theta = (
        _normalised_from_pixels(source_size, source_size)
        @ np.linalg.inv(forward)
        @ np.linalg.inv(_normalised_from_pixels(target_size, target_size))
    )
    return torch.tensor(theta[:2], dtype=torch.float32)


class ChipEmbedder(nn.Module):
    """A frozen embedder reading grey template-aligned chips (see the module docstring):
    (N, 1, S, S) in [-1, 1] → (N, D) unit-length embeddings."""

    theta: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(
        self,
        network: nn.Module,
        card: ModelCard,
        chip_template: Sequence[tuple[float, float]],
        chip_size: int,
    ) -> None:
        super().__init__()
        spec = card.spec
        if not isinstance(spec, EmbeddingSpec) or card.input_hw is None:
            raise TypeError(f"{card.name} is not a face embedder")
        self.network = network.eval().requires_grad_(False)
        self.out_size = card.input_hw
        theta = warp_theta(
            np.asarray(chip_template, np.float64) * chip_size,
            chip_size,
            np.asarray(spec.landmark_template, np.float64),
            card.input_hw[0],
        )
        self.register_buffer("theta", theta)
        lo, hi = card.value_range
        mean = torch.tensor(card.mean).view(1, 3, 1, 1)
        std = torch.tensor(card.std).view(1, 3, 1, 1)
        # x in [-1, 1] → the card's range, less its mean, over its std, per channel.
        self.register_buffer("scale", (hi - lo) / 2 / std)
        self.register_buffer("shift", (lo + (hi - lo) / 2 - mean) / std)

    def train(self, mode: bool = True) -> ChipEmbedder:
        """Always in eval mode (frozen statistics), whatever the recipe's networks do."""
        super().train(False)
        return self

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        size = (len(chips), 1, *self.out_size)
        grid = F.affine_grid(self.theta.expand(len(chips), 2, 3), list(size), align_corners=False)
        warped = F.grid_sample(chips, grid, padding_mode="border", align_corners=False)
        x = warped.expand(-1, 3, -1, -1) * self.scale + self.shift
        return F.normalize(self.network(x).float(), dim=1)


@torch.no_grad()
def served_embeddings(
    network: nn.Module,
    card: ModelCard,
    greys: Sequence[NDArray[np.uint8]],
    five: NDArray[np.float64],
) -> torch.Tensor:
    """(N, D) unit-length embeddings of whole grey images aligned by their (N, 5, 2)
    detector points onto the embedder's template, as the served embed endpoint does."""
    spec = card.spec
    assert isinstance(spec, EmbeddingSpec) and card.input_hw is not None
    template = np.asarray(spec.landmark_template, np.float64)
    chips = np.concatenate(
        [
            align_faces(np.repeat(g[:, :, None], 3, axis=2), p[None], template, card.input_hw)
            for g, p in zip(greys, five, strict=True)
        ]
    )
    device = next(network.parameters()).device
    x = torch.from_numpy(normalise(chips, card)).to(device)
    return F.normalize(network.eval()(x).float(), dim=1).cpu()


def verification_auc(sources: torch.Tensor, frontals: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC of cosine similarity over every (source i, frontal j) pair, same person vs not
    (labels: the person of each row of both)."""
    scores = (sources @ frontals.T).numpy().ravel()
    same = (labels[:, None] == labels[None, :]).numpy().ravel()
    return roc_auc(scores, same)


def frontalization_figures(
    *,
    unfrontalized: torch.Tensor,
    frontalized: torch.Tensor,
    truth_chips: torch.Tensor,
    reference: torch.Tensor,
    labels: torch.Tensor,
) -> dict[str, float]:
    """Identity figures of one evaluation (all (N, D) unit-length, row i the same pair).

    Args:
        unfrontalized: served embeddings of the source faces.
        frontalized: :class:`ChipEmbedder` embeddings of the frontalizer's outputs.
        truth_chips: :class:`ChipEmbedder` embeddings of the true frontal chips.
        reference: served embeddings of the true frontal images.
        labels: (N,) person of each pair.
    """
    return {
        "identity_unfrontalized": float((unfrontalized * reference).sum(1).mean()),
        "identity_frontalized": float((frontalized * reference).sum(1).mean()),
        "identity_truth_chip": float((truth_chips * reference).sum(1).mean()),
        "auc_unfrontalized": verification_auc(unfrontalized, reference, labels),
        "auc_frontalized": verification_auc(frontalized, reference, labels),
    }
