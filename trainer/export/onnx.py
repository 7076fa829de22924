"""ONNX export with named tensors and dynamic axes, checked against PyTorch."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from gantry.core.cards import ModelCard

DEFAULT_OPSET = 17
# One probe input: the only input's array, or one array per input of the card.
ProbeInput = NDArray[Any] | tuple[NDArray[Any], ...]


class ParityError(RuntimeError):
    """The exported graph does not reproduce the PyTorch module."""


@dataclass(frozen=True)
class ParityReport:
    """Largest absolute difference between ONNX Runtime and PyTorch over the probe images."""

    max_abs_err: float
    mean_abs_err: float
    images: tuple[str, ...]


def probe_shapes(card: ModelCard, side: int = 64) -> tuple[tuple[int, ...], ...]:
    """Input shapes (batch 1), one per card input, for tracing and counting: dynamic dims
    become ``side`` (rounded up to what the card takes)."""
    multiple = card.size_multiple
    side = -(-max(side, card.min_input_size) // multiple) * multiple  # rounded up to a multiple
    return tuple((1, *(d if d > 0 else side for d in t.dims)) for t in card.inputs)


def probe_shape(card: ModelCard, side: int = 64) -> tuple[int, ...]:
    """The first (image) input's shape of :func:`probe_shapes`."""
    return probe_shapes(card, side)[0]


def _dynamic_axes(card: ModelCard) -> dict[str, dict[int, str]]:
    """Batch plus every -1 dimension of each tensor, named after tensor and axis."""
    axes: dict[str, dict[int, str]] = {}
    for spec in (*card.inputs, *card.outputs):
        named = {0: "batch"}
        for i, d in enumerate(spec.dims, start=1):
            if d < 0:
                named[i] = f"{spec.name}_dim{i}"
        axes[spec.name] = named
    return axes


def export_onnx(
    model: nn.Module, card: ModelCard, path: Path, *, opset: int = DEFAULT_OPSET
) -> Path:
    """Export ``model`` to ``path`` with the card's tensor names.

    The batch axis and every dimension the card marks -1 are dynamic, so one file serves
    every tile, image size and batch.

    Args:
        model: the network, in eval mode, on CPU.
        card: its model card (tensor names, dims).
        path: where to write ``model.onnx``.
        opset: ONNX opset.

    Returns:
        ``path``.
    """
    shapes = list(probe_shapes(card))
    # Trace with a non-square input so no height/width confusion can hide in the graph.
    widen = max(8, card.size_multiple)
    for i, (shape, spec) in enumerate(zip(shapes, card.inputs, strict=True)):
        if len(shape) == 4 and spec.dims[-1] < 0:
            shapes[i] = (*shape[:-1], shape[-1] + widen)
    dummies = tuple(torch.rand(*shape) for shape in shapes)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export; it is still the one
        # that turns these conv nets into clean static graphs in seconds on CPU.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            dummies,
            str(path),
            input_names=[t.name for t in card.inputs],
            output_names=[t.name for t in card.outputs],
            dynamic_axes=_dynamic_axes(card),
            opset_version=opset,
            dynamo=False,
        )
    return path


def _as_tuple(output: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return output if isinstance(output, tuple) else (output,)


def probe_arrays(card: ModelCard, probe: ProbeInput) -> tuple[NDArray[Any], ...]:
    """A probe's arrays, one per card input (a single array is the only input's)."""
    arrays = probe if isinstance(probe, tuple) else (probe,)
    if len(arrays) != len(card.inputs):
        raise ValueError(f"{card.name} takes {len(card.inputs)} inputs; a probe has {len(arrays)}")
    return arrays


def check_parity(
    model: nn.Module,
    onnx_path: Path,
    card: ModelCard,
    images: Sequence[tuple[str, ProbeInput]],
    *,
    tolerance: float = 1e-3,
) -> ParityReport:
    """Run PyTorch and ONNX Runtime on the same inputs and compare every output.

    Args:
        model: the PyTorch module that was exported.
        onnx_path: the exported file.
        card: its card.
        images: (label, input) pairs: a CHW float32 array already normalised as the card
            says, or for a card of several inputs a tuple of arrays in the card's order.
        tolerance: the largest allowed absolute difference on any output.

    Raises:
        ParityError: when any output element differs by more than ``tolerance``.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [t.name for t in card.inputs]
    worst, total, count = 0.0, 0.0, 0
    for _, probe in images:
        batch = [array[None] for array in probe_arrays(card, probe)]
        with torch.inference_mode():
            expected = _as_tuple(model(*(torch.from_numpy(a) for a in batch)))
        got = session.run([t.name for t in card.outputs], dict(zip(names, batch, strict=True)))
        for want, have in zip(expected, got, strict=True):
            diff = np.abs(have - want.numpy())
            worst = max(worst, float(diff.max()))
            total += float(diff.sum())
            count += diff.size
    report = ParityReport(worst, total / max(count, 1), tuple(label for label, _ in images))
    if worst > tolerance:
        raise ParityError(
            f"{card.name}: ONNX Runtime differs from PyTorch by {worst:.3g} (> {tolerance:g})"
        )
    return report


def conv_gflops_per_pixel(
    model: nn.Module, shape: tuple[int, ...], *more: tuple[int, ...]
) -> float:
    """GFLOP (2 x multiply-adds of every convolution and linear layer) per input pixel.

    Convolutions are over 99% of the work of these networks, so this is what the gateway
    uses to estimate the cost of a request and the benchmark to report achieved GFLOP/s.

    Args:
        model: the network.
        shape: the (1, C, H, W) image input to count on (per pixel of it).
        more: the shapes of the model's other inputs, if it has more (zeros are fed).
    """
    macs = 0

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.inference_mode():
            model(torch.zeros(*shape), *(torch.zeros(*s) for s in more))
    finally:
        for handle in handles:
            handle.remove()
    return 2.0 * macs / (shape[-2] * shape[-1]) / 1e9


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
