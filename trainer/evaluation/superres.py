"""Super-resolution figures: fidelity (PSNR / SSIM on Y) and a no-reference sharpness ratio.

Fidelity follows the SR literature and ``bench/metrics.py``: 8-bit rounded images, BT.601
luma, a border of ``SHAVE`` (the scale, 4) pixels left out of both images, as in the
ESRGAN / BasicSR evaluations; :mod:`trainer.evaluation.restoration` computes the two figures.
The baseline an SR network must beat is the bicubic upscaling of the LR input (PIL's
bicubic on the 8-bit LR, as MATLAB's ``imresize`` does for the standard tables).

PSNR rewards the mean of the plausible answers, i.e. blur: a GAN-stage model that draws
plausible texture scores lower PSNR than its PSNR-oriented start while looking sharper.
So beside PSNR stands a figure that needs no reference: the **gradient energy** of the
output's luma (the mean squared horizontal and vertical finite differences), divided by
that of the HR truth. 1 is the truth's own sharpness; bicubic scores well below 1 (blur);
above 1 is an output with more high-frequency energy than photos have (noise, ringing,
invented texture). It says nothing about whether the detail is right: PSNR does.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from trainer.evaluation.restoration import psnr_y, ssim_y, to_luma

SHAVE = 4


def shave(images: torch.Tensor, border: int = SHAVE) -> torch.Tensor:
    """(N, C, H, W) without ``border`` pixels on each side."""
    if border == 0:
        return images
    return images[..., border:-border, border:-border]


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, 3, h, w) in [-1, 1] upscaled by PIL's bicubic on 8-bit images, in [-1, 1]."""
    out = []
    for image in lr:
        levels = torch.clamp(torch.round((image + 1) * 127.5), 0, 255).to(torch.uint8)
        pil = Image.fromarray(levels.permute(1, 2, 0).cpu().numpy())
        big = pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.BICUBIC)
        array = np.asarray(big).transpose(2, 0, 1).copy()
        out.append(torch.from_numpy(array).float() / 127.5 - 1)
    return torch.stack(out).to(lr.device)


def gradient_energy(images: torch.Tensor) -> torch.Tensor:
    """Per image: mean squared finite differences (x and y) of the 8-bit luma; (N,) float64."""
    y = to_luma(images)
    dx = (y[..., :, 1:] - y[..., :, :-1]).pow(2).flatten(1).mean(1)
    dy = (y[..., 1:, :] - y[..., :-1, :]).pow(2).flatten(1).mean(1)
    return dx + dy


def superres_figures(
    upscaled: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, scale: int
) -> dict[str, float]:
    """Mean held-aside figures of a model's outputs, and of bicubic's (the baseline).

    Args:
        upscaled: the model's outputs, (N, 3, H, W) in [-1, 1].
        lr: its inputs, (N, 3, H / scale, W / scale) in [-1, 1].
        hr: the truth, (N, 3, H, W) in [-1, 1].
        scale: the upscale factor.

    Returns:
        ``val_psnr``, ``val_ssim`` (Y, shaved), ``val_sharpness`` (gradient energy over the
        truth's), and the same three of bicubic with the suffix ``_bicubic``.
    """
    bicubic = bicubic_upscale(lr, scale)
    truth = shave(hr)
    truth_energy = gradient_energy(truth)
    figures: dict[str, float] = {}
    for suffix, images in (("", upscaled), ("_bicubic", bicubic)):
        cut = shave(images.clamp(-1, 1))
        figures[f"val_psnr{suffix}"] = float(psnr_y(cut, truth).mean())
        figures[f"val_ssim{suffix}"] = float(ssim_y(cut, truth).mean())
        figures[f"val_sharpness{suffix}"] = float((gradient_energy(cut) / truth_energy).mean())
    if not all(math.isfinite(v) for v in figures.values()):
        raise ValueError(f"a held-aside image is restored exactly or is flat: {figures}")
    return figures
