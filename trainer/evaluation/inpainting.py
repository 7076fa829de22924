"""Fidelity of filled holes to the truth: PSNR over the hole's pixels, and the two baselines a
learnt fill must beat.

* PSNR inside the hole (:func:`hole_psnr`): images are rounded to 8 bits, as a served image
  is, and the squared error is averaged over the hole's pixels and the three RGB channels
  only (outside the hole a completed image is the input itself, which would inflate a
  whole-image PSNR by the hole's share).
* The mean fill (:func:`mean_fill`): each hole filled with the mean colour of the image's
  known pixels, per channel: what a network that learnt nothing but the colour scores.
* OpenCV's Telea fill (:func:`telea_fill`): ``cv2.inpaint(..., cv2.INPAINT_TELEA)``, the
  fast-marching method of Telea (2004), the classical anchor, with a 3 px neighbourhood
  (OpenCV's sample's radius) on the 8-bit image.

Images here are (N, 3, H, W) RGB in [0, 1] (the completion network's range) and masks
(N, 1, H, W) with 1 inside the hole.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

TELEA_RADIUS = 3


def to_levels(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images → 8-bit levels (float64, rounded and clipped as an encoder does)."""
    return torch.clamp(torch.floor(images.double() * 255 + 0.5), 0, 255)


def hole_psnr(filled: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) over the hole's pixels of 8-bit-rounded RGB; (N,) float64.

    Raises:
        ValueError: an image has no hole.
    """
    hole = mask.double().flatten(1)
    if bool((hole.sum(1) == 0).any()):
        raise ValueError("an image has an empty hole: PSNR inside it is undefined")
    error = (to_levels(filled) - to_levels(truth)).pow(2).sum(1).flatten(1)
    mse = (error * hole).sum(1) / (3 * hole.sum(1))
    return 10 * torch.log10(255.0**2 / mse)


def mean_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each image's hole filled with the mean of its known pixels (per channel)."""
    known = 1 - mask
    mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
    return image * known + mean * mask


def telea_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each image's hole filled by OpenCV's Telea inpainting on its 8-bit pixels."""
    levels = to_levels(image).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    holes = (mask[:, 0] > 0.5).to(torch.uint8).cpu().numpy() * 255
    filled = [
        cv2.inpaint(np.ascontiguousarray(rgb), hole, TELEA_RADIUS, cv2.INPAINT_TELEA)
        for rgb, hole in zip(levels, holes, strict=True)
    ]
    out = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).to(image.dtype) / 255
    return out.to(image.device)


def inpainting_figures(
    completed: torch.Tensor, image: torch.Tensor, mask: torch.Tensor
) -> dict[str, float]:
    """Mean PSNR inside the holes of the completed images and of the two baselines.

    Args:
        completed: the input outside the hole, the network's fill inside, in [0, 1].
        image: the truth.
        mask: 1 inside the hole.

    Returns:
        ``val_psnr_hole`` (the network's fill), ``val_psnr_hole_mean_fill`` and
        ``val_psnr_hole_telea`` (the baselines), each in dB.
    """
    figures = {
        "val_psnr_hole": hole_psnr(completed, image, mask),
        "val_psnr_hole_mean_fill": hole_psnr(mean_fill(image, mask), image, mask),
        "val_psnr_hole_telea": hole_psnr(telea_fill(image, mask), image, mask),
    }
    out = {name: float(values.mean()) for name, values in figures.items()}
    if not all(math.isfinite(v) for v in out.values()):
        raise ValueError(f"a held-aside hole is filled exactly: {out}")
    return out
