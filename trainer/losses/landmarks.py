"""PFLD's landmark loss (Guo et al. 2019, eq. 2): the squared point error of each face,
weighted by how far its head pose is from the auxiliary net's estimate and by how rare its
conditions are.

    L = 1/M sum_m ( sum_c w_c [m in c] ) ( floor + sum_k (1 - cos theta_m^k) ) |d_m|^2

with ``theta^k`` the differences between the estimated and the true yaw, pitch and roll,
``d_m`` the face's point errors (relative coordinates) and ``w_c`` the reciprocal of class
``c``'s share of the training faces. The reference (polarisZhao/PFLD-pytorch) has
``floor = 0``, so a face whose pose the auxiliary net already gets right teaches the landmark
net nothing; the auxiliary net learns only through this product.
"""

from __future__ import annotations

import torch


def pose_weights(estimated: torch.Tensor, truth: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """``floor + sum_k (1 - cos(estimated_k - truth_k))`` per face, for (N, 3) radians."""
    return floor + (1.0 - torch.cos(estimated - truth)).sum(dim=1)


def pfld_loss(
    points: torch.Tensor,
    truth: torch.Tensor,
    pose: torch.Tensor,
    pose_truth: torch.Tensor,
    face_weights: torch.Tensor,
    *,
    floor: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the weighted loss, the plain mean squared point error per face) for (N, P, 2) points,
    (N, 3) poses and (N,) condition weights."""
    squared = ((points - truth) ** 2).sum(dim=(1, 2))
    weighted = pose_weights(pose, pose_truth, floor) * face_weights * squared
    return weighted.mean(), squared.mean()
