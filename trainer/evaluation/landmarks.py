"""Landmark accuracy on held-aside faces: the 300-W NME and failure rate, and how a net's
points look on the faces.

The NME is the mean point-to-point error over the outer-eye-corner distance (iBUG 36 and 45,
the 300-W convention); a face fails above :data:`FAILURE_NME` (0.08, the common 300-W and WFLW
threshold). The floor a net must beat is the mean training shape placed in every crop: what
a net that ignores the image scores.
"""

from __future__ import annotations

import torch

from trainer.data.landmarks import OUTER_EYE_CORNERS

FAILURE_NME = 0.08
DOT_RADIUS = 1  # pixels of each drawn point, around its centre


def nme_per_face(points: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(N,) NME of (N, P, 2) points against the truth (any common unit: relative is fine)."""
    left, right = OUTER_EYE_CORNERS
    distance = (truth[:, left] - truth[:, right]).norm(dim=1).clamp_min(1e-9)
    return (points - truth).norm(dim=2).mean(dim=1) / distance


def landmark_figures(
    points: torch.Tensor, truth: torch.Tensor, mean_shape: torch.Tensor
) -> dict[str, float]:
    """NME and failure rate of ``points``, and of the mean shape (P, 2) in every crop."""
    nme = nme_per_face(points.float(), truth)
    floor = nme_per_face(mean_shape.expand_as(truth), truth)
    return {
        "val_nme": float(nme.mean()),
        "val_failure_rate": float((nme > FAILURE_NME).float().mean()),
        "val_nme_mean_shape": float(floor.mean()),
        "val_failure_rate_mean_shape": float((floor > FAILURE_NME).float().mean()),
    }


def draw_points(
    image: torch.Tensor, points: torch.Tensor, colour: tuple[float, ...]
) -> torch.Tensor:
    """A copy of the (3, H, W) image in [-1, 1] with the (P, 2) relative points as dots."""
    out = image.clone()
    _, height, width = out.shape
    paint = torch.tensor(colour, dtype=out.dtype, device=out.device).view(3, 1, 1)
    for x, y in (points * torch.tensor([width, height], device=points.device)).tolist():
        col, row = round(x - 0.5), round(y - 0.5)
        top, left = max(row - DOT_RADIUS, 0), max(col - DOT_RADIUS, 0)
        bottom, right = min(row + DOT_RADIUS + 1, height), min(col + DOT_RADIUS + 1, width)
        if top < bottom and left < right:
            out[:, top:bottom, left:right] = paint
    return out
