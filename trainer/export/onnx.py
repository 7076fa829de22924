"""ONNX export with named tensors and dynamic axes, checked against PyTorch."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from gantry.cards import ModelCard

DEFAULT_OPSET = 17


class ParityError(RuntimeError):
    """The exported graph does not reproduce the PyTorch module."""


@dataclass(frozen=True)
class ParityReport:
    """Largest absolute difference between ONNX Runtime and PyTorch over the probe images."""

    max_abs_err: float
    mean_abs_err: float
    images: tuple[str, ...]


def export_onnx(
    model: nn.Module, card: ModelCard, path: Path, *, opset: int = DEFAULT_OPSET
) -> Path:
    """Export ``model`` to ``path`` with the card's tensor names.

    Batch, height and width are dynamic so one file serves every tile and image size.

    Args:
        model: the network, in eval mode, on CPU.
        card: its model card (tensor names and channel count).
        path: where to write ``model.onnx``.
        opset: ONNX opset.

    Returns:
        ``path``.
    """
    (inp,) = card.inputs
    (out,) = card.outputs
    channels = inp.dims[0]
    side = max(card.min_input_size, 32)
    dummy = torch.rand(1, channels, side, side + 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export; it is still the one
        # that turns these conv nets into clean static graphs in under a minute on CPU.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=[inp.name],
            output_names=[out.name],
            dynamic_axes={inp.name: dynamic, out.name: dynamic},
            opset_version=opset,
            dynamo=False,
        )
    return path


def check_parity(
    model: nn.Module,
    onnx_path: Path,
    card: ModelCard,
    images: list[tuple[str, NDArray[Any]]],
    *,
    tolerance: float = 1e-3,
) -> ParityReport:
    """Run PyTorch and ONNX Runtime on the same images and compare.

    Args:
        model: the PyTorch module that was exported.
        onnx_path: the exported file.
        card: its card.
        images: (label, CHW float32 array in the card's value range) pairs.
        tolerance: the largest allowed absolute difference on the output.

    Raises:
        ParityError: when any output element differs by more than ``tolerance``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (inp,) = card.inputs
    worst, total, count = 0.0, 0.0, 0
    for _, chw in images:
        with torch.inference_mode():
            expected = model(torch.from_numpy(chw[None])).numpy()
        (got,) = session.run(None, {inp.name: chw[None]})
        diff = np.abs(got - expected)
        worst = max(worst, float(diff.max()))
        total += float(diff.sum())
        count += diff.size
    report = ParityReport(worst, total / max(count, 1), tuple(label for label, _ in images))
    if worst > tolerance:
        raise ParityError(
            f"{card.name}: ONNX Runtime differs from PyTorch by {worst:.3g} (> {tolerance:g})"
        )
    return report


def conv_gflops_per_pixel(model: nn.Module, channels: int, side: int = 64) -> float:
    """GFLOP (2 x multiply-adds of every convolution) per input pixel.

    Convolutions are over 99% of the work of these generators, so this is what the gateway
    uses to estimate the cost of a request and the benchmark to report achieved GFLOP/s.
    """
    macs = 0

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, channels, side, side))
    finally:
        for handle in handles:
            handle.remove()
    return 2.0 * macs / (side * side) / 1e9


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
