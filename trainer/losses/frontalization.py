"""Face frontalization losses: TP-GAN's symmetry and identity-preserving losses (Huang et al.,
ICCV 2017) and CAPG-GAN's multi-scale pixel loss (Hu et al., CVPR 2018).

TP-GAN's total-variation term is :func:`trainer.losses.pixel.total_variation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

# The 4-neighbour discrete Laplacian: d2/dx2 + d2/dy2 on the pixel grid.
LAPLACIAN_KERNEL = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def laplacian(image: torch.Tensor) -> torch.Tensor:
    """The 3x3 Laplacian (:data:`LAPLACIAN_KERNEL`) of each channel of (N, C, H, W) ``image``,
    with replicate padding: the same shape, 0 wherever the image is locally linear (so along
    the borders only where the image is flat across them)."""
    channels = image.shape[1]
    kernel = torch.tensor(LAPLACIAN_KERNEL, dtype=image.dtype, device=image.device)
    weight = kernel.expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), weight, groups=channels)


def symmetry_loss(image: torch.Tensor, *, laplacian_space: bool = False) -> torch.Tensor:
    """TP-GAN's symmetry loss: mean |I - I flipped left to right| over (N, C, H, W) ``image``.

    It assumes the face is centred in the crop, its vertical axis on the crop's middle column
    (as the recipe's frontal alignment puts it): an off-centre symmetric face still scores.
    The paper also applies it to the Laplacian of the image (``laplacian_space``), which
    ignores illumination differences between the two halves; each pair of mirrored pixels is
    counted twice, so this equals the paper's mean over one half.

    Returns:
        A scalar tensor.
    """
    x = laplacian(image) if laplacian_space else image
    return (x - x.flip(-1)).abs().mean()


def multiscale_l1(
    output: torch.Tensor, target: torch.Tensor, scales: Sequence[float] = (1.0, 0.5, 0.25)
) -> torch.Tensor:
    """CAPG-GAN's multi-scale pixel loss: the mean over ``scales`` of the L1 between (N, C, H, W)
    ``output`` and ``target``, both area-downsampled to ``floor(H * s) x floor(W * s)``.

    Raises:
        ValueError: no scales, or one outside (0, 1].
    """
    if not scales or any(not 0 < s <= 1 for s in scales):
        raise ValueError(f"scales must be in (0, 1], got {tuple(scales)}")
    terms = []
    for s in scales:
        if s == 1:
            terms.append(F.l1_loss(output, target))
            continue
        size = (int(output.shape[-2] * s), int(output.shape[-1] * s))
        terms.append(
            F.l1_loss(
                F.interpolate(output, size=size, mode="area"),
                F.interpolate(target, size=size, mode="area"),
            )
        )
    return torch.stack(terms).mean()


def identity_feature_loss(
    features_out: torch.Tensor,
    features_target: torch.Tensor,
    *,
    kind: Literal["cosine", "mse"] = "cosine",
) -> torch.Tensor:
    """TP-GAN's identity-preserving loss on a frozen face embedder's features of the output and
    of the true frontal face.

    ``"cosine"``: 1 - the cosine similarity of the L2-normalised (N, D) embeddings (any trailing
    shape is flattened), averaged over the batch: 0 for the same direction, 2 for opposite.
    ``"mse"``: the mean squared difference of the raw features, as the paper puts it on Light
    CNN's last layers. ``features_target`` is the target, so it is detached.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: an unknown ``kind``.
    """
    a, b = features_out.flatten(1), features_target.detach().flatten(1)
    if kind == "mse":
        return F.mse_loss(a, b)
    if kind != "cosine":
        raise ValueError(f"unknown kind {kind!r}; expected 'cosine' or 'mse'")
    return (1 - (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(dim=1)).mean()
