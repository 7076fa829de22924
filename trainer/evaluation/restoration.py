"""Fidelity of restored images to the truth: PSNR and SSIM on the luma (Y) channel.

Both follow the super-resolution and deblurring literature's convention (and
``bench/metrics.py``, which computes them with OpenCV for the serving benchmarks): images are
first rounded to 8 bits, as a served image is, then compared on ITU-R BT.601 luma in
[16, 235] (MATLAB's ``rgb2ycbcr``). SSIM is Wang et al. (2004): an 11x11 Gaussian window
with sigma 1.5, constants (0.01 * 255)² and (0.03 * 255)², the mean of the map over the
windows that lie inside the image (no padding). Figures are means over images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
# BT.601 luma of 0..255 RGB, offset 16 (MATLAB's rgb2ycbcr).
_LUMA = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)


def to_luma(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [-1, 1] → (N, 1, H, W) 8-bit-rounded BT.601 luma in [16, 235]."""
    levels = torch.clamp(torch.floor((images.double() + 1) * 127.5 + 0.5), 0, 255)
    weights = torch.tensor(_LUMA, dtype=torch.float64, device=images.device).view(1, 3, 1, 1)
    return 16.0 + (levels * weights).sum(1, keepdim=True)


def psnr_y(restored: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) on luma of (N, 3, H, W) images in [-1, 1]; (N,) float64.

    Identical images score infinity.
    """
    mse = (to_luma(restored) - to_luma(truth)).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)


def _gaussian_window(device: torch.device) -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64, device=device) - SSIM_WINDOW // 2
    g = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] @ g[None, :])[None, None]


def ssim_y(restored: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM on luma of (N, 3, H, W) images in [-1, 1] (H, W >= 11); (N,) float64."""
    a, b = to_luma(restored), to_luma(truth)
    window = _gaussian_window(a.device)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + _C1) * (2 * cov + _C2)) / (
        (mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2)
    )
    return ssim_map.flatten(1).mean(1)


def restoration_figures(
    restored: torch.Tensor, blurred: torch.Tensor, sharp: torch.Tensor
) -> dict[str, float]:
    """Mean PSNR and SSIM of the restored images and, as the baseline, of their inputs.

    Args:
        restored: G's outputs, (N, 3, H, W) in [-1, 1].
        blurred: G's inputs.
        sharp: the truth.

    Returns:
        ``val_psnr``, ``val_ssim`` (restored vs sharp) and ``val_psnr_blurred``,
        ``val_ssim_blurred`` (the input vs sharp: what doing nothing scores).
    """
    figures = {
        "val_psnr": psnr_y(restored, sharp),
        "val_ssim": ssim_y(restored, sharp),
        "val_psnr_blurred": psnr_y(blurred, sharp),
        "val_ssim_blurred": ssim_y(blurred, sharp),
    }
    out = {name: float(values.mean()) for name, values in figures.items()}
    if not all(math.isfinite(v) for v in out.values()):
        raise ValueError(f"a held-aside image is restored exactly or not at all: {out}")
    return out
