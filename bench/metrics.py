"""Super-resolution quality metrics as the SR literature computes them (BasicSR conventions)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray


def rgb_to_y(rgb: NDArray[Any]) -> NDArray[np.float64]:
    """ITU-R BT.601 luma of an RGB uint8 image, in [16, 235] (MATLAB's rgb2ycbcr)."""
    x = rgb.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def psnr_y(a: NDArray[Any], b: NDArray[Any], shave: int) -> float:
    """PSNR on the Y channel with ``shave`` border pixels removed."""
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if shave:
        ya, yb = ya[shave:-shave, shave:-shave], yb[shave:-shave, shave:-shave]
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def ssim_y(a: NDArray[Any], b: NDArray[Any], shave: int) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian, sigma 1.5) on the Y channel."""
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if shave:
        ya, yb = ya[shave:-shave, shave:-shave], yb[shave:-shave, shave:-shave]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T

    def blur(img: NDArray[Any]) -> NDArray[Any]:
        return cv2.filter2D(img, -1, window)[5:-5, 5:-5]

    mu_a, mu_b = blur(ya), blur(yb)
    var_a = blur(ya**2) - mu_a**2
    var_b = blur(yb**2) - mu_b**2
    cov = blur(ya * yb) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean())


def psnr_rgb(a: NDArray[Any], b: NDArray[Any]) -> float:
    """PSNR over all RGB channels of two uint8 images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))
