"""Pixel-space and feature-space reconstruction losses: L1, MSE, total variation, feature
matching, and CycleGAN's cycle-consistency and identity terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Reduction = Literal["mean", "sum"]


class L1Loss(nn.Module):
    """``weight · L1(prediction, target)``: the SR and pix2pix pixel loss.

    Args:
        weight: multiplies the loss (ESRGAN's ``pixel_weight`` is 1e-2, pix2pix's λ_L1 100).
        reduction: ``"mean"`` over every element, or ``"sum"``.
    """

    def __init__(self, weight: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.weight = weight
        self.reduction = reduction

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted L1 between ``prediction`` and ``target`` (same shape)."""
        return F.l1_loss(prediction, target, reduction=self.reduction) * self.weight


class MSELoss(nn.Module):
    """``weight · MSE(prediction, target)``, the (squared) L2 pixel loss.

    Args:
        weight: multiplies the loss.
        reduction: ``"mean"`` over every element, or ``"sum"``.
    """

    def __init__(self, weight: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.weight = weight
        self.reduction = reduction

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted mean squared error between ``prediction`` and ``target``."""
        return F.mse_loss(prediction, target, reduction=self.reduction) * self.weight


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |vertical step| + mean |horizontal step|.

    Each direction is averaged on its own (an (H, W) image has (H-1)·W vertical and H·(W-1)
    horizontal steps), so a 0/1 checkerboard scores exactly 2 whatever its size.

    Args:
        image: (..., H, W), H and W at least 2.

    Returns:
        A scalar tensor.
    """
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    return dy + dx


def feature_matching(
    fake_features: Sequence[Sequence[torch.Tensor]],
    real_features: Sequence[Sequence[torch.Tensor]],
    weight: float = 1.0,
    *,
    weighting: Literal["mean", "pix2pixhd"] = "mean",
    skip_last: bool = True,
) -> torch.Tensor:
    """L1 between D's intermediate maps on fakes and on real data (Wang et al. 2018, pix2pixHD).

    Real maps are targets, so they are detached. Each scale's list ends with the patch scores,
    which the GAN loss covers, so ``skip_last`` leaves them out.

    Args:
        fake_features: per scale, D's maps on the fake (the output of a multi-scale D with
            intermediate features, e.g. pix2pixHD's ``MultiscaleDiscriminator``).
        real_features: the same on the real images.
        weight: multiplies the loss (pix2pixHD's ``lambda_feat``, 10).
        weighting: ``"mean"`` averages the per-map L1s. ``"pix2pixhd"`` weighs each map
            4 / (number of maps) and each scale 1 / (number of scales) and sums, as upstream
            does; with equally deep scales that is 4 × the mean.
        skip_last: leave out each scale's last map (the patch scores).

    Returns:
        A scalar tensor.

    Raises:
        ValueError: the two lists differ in scales or maps per scale, or no map is left.
    """
    if len(fake_features) != len(real_features):
        raise ValueError(f"{len(fake_features)} fake scales but {len(real_features)} real")
    scale_terms = []
    for i, (fake_scale, real_scale) in enumerate(zip(fake_features, real_features, strict=True)):
        if len(fake_scale) != len(real_scale):
            raise ValueError(f"scale {i}: {len(fake_scale)} fake maps, {len(real_scale)} real")
        fakes = fake_scale[:-1] if skip_last else fake_scale
        reals = real_scale[:-1] if skip_last else real_scale
        if not fakes:
            raise ValueError(f"scale {i} has no intermediate maps to match")
        scale_terms.append(
            torch.stack([F.l1_loss(f, r.detach()) for f, r in zip(fakes, reals, strict=True)])
        )
    if not scale_terms:
        raise ValueError("no scales to match")
    if weighting == "mean":
        loss = torch.cat(scale_terms).mean()
    else:
        # pix2pixHD: D_weights = 1/num_D, feat_weights = 4/(n_layers+1), where a scale with
        # get_interm_feat returns n_layers + 2 maps, i.e. n_layers + 1 before the scores.
        per_scale = [terms.sum() * (4.0 / len(terms)) for terms in scale_terms]
        loss = torch.stack(per_scale).sum() / len(scale_terms)
    return loss * weight


def cycle_consistency(
    reconstructed: torch.Tensor, original: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """CycleGAN's cycle loss (Zhu et al. 2017): ``weight · L1(F(G(x)), x)``.

    Args:
        reconstructed: the image mapped to the other domain and back.
        original: the input it should reproduce.
        weight: CycleGAN's λ (10 by default, ``lambda_A`` / ``lambda_B``).
    """
    return F.l1_loss(reconstructed, original) * weight


def identity(
    same_domain_output: torch.Tensor, input: torch.Tensor, weight: float = 5.0
) -> torch.Tensor:
    """CycleGAN's identity loss: ``weight · L1(G(y), y)`` for y already in G's target domain.

    It keeps G from changing what needs no translation (colour casts, in the paper's
    paintings→photos). CycleGAN weighs it ``lambda_identity · λ`` = 0.5 · 10 = 5.

    Args:
        same_domain_output: G applied to an image of its own output domain.
        input: that image.
        weight: the loss weight.
    """
    return F.l1_loss(same_domain_output, input) * weight
