"""`gantry models build`: cards → weights → ONNX (→ TensorRT) → a Triton model repository."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gantry.cards import BuildInfo, BuiltCard, ModelCard
from trainer.archs import build_network
from trainer.cards import CARDS
from trainer.export.onnx import (
    DEFAULT_OPSET,
    check_parity,
    conv_gflops_per_pixel,
    export_onnx,
    probe_shape,
    sha256_file,
)
from trainer.export.probes import probe_inputs
from trainer.export.triton_config import ModelFormat, Profile, render_config
from trainer.weights.loader import load_weights

Step = Callable[[str], None]


@dataclass(frozen=True)
class BuildOptions:
    """How to build one model."""

    repository: Path
    data_dir: Path
    profile: Profile = "cpu"
    weights: Path | None = None
    tensorrt: bool = False
    intra_op_threads: int = 0
    tolerance: float = 1e-3


def load_model(card: ModelCard, weights: Path | None = None) -> nn.Module:
    """The card's network with its packaged weights, or a user's official checkpoint."""
    model = build_network(card.architecture, **card.arch_kwargs)
    state_dict = load_weights(card, weights)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def build_model(card: ModelCard, options: BuildOptions, step: Step = lambda _: None) -> BuiltCard:
    """Export one model into the repository and return its built card."""
    model_dir = options.repository / card.name
    version_dir = model_dir / str(card.version)
    step("loading weights")
    model = load_model(card, options.weights)
    step("exporting ONNX")
    with torch.no_grad():
        onnx_path = export_onnx(model, card, version_dir / "model.onnx")
    step("checking ONNX Runtime against PyTorch")
    images = probe_inputs(card, options.data_dir)
    report = check_parity(model, onnx_path, card, images, tolerance=options.tolerance)
    model_format: ModelFormat = "onnx"
    if options.tensorrt:
        step("building TensorRT plan")
        from trainer.export.tensorrt import build_plan

        build_plan(onnx_path, card, version_dir / "model.plan")
        model_format = "tensorrt_plan"
    step("writing config.pbtxt")
    (model_dir / "config.pbtxt").write_text(
        render_config(
            card,
            profile="gpu" if options.tensorrt else options.profile,
            model_format=model_format,
            intra_op_threads=options.intra_op_threads,
        )
    )
    built = BuiltCard(
        card=card,
        build=BuildInfo(
            format=model_format,
            weights_file=str(options.weights) if options.weights else card.weights.source,
            onnx_sha256=sha256_file(onnx_path),
            opset=DEFAULT_OPSET,
            parity_max_abs_err=report.max_abs_err,
            parity_images=list(report.images),
            gflops_per_input_pixel=conv_gflops_per_pixel(model, probe_shape(card)),
            parameters=sum(p.numel() for p in model.parameters()),
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ),
    )
    built.write(model_dir)
    return built


def build_repository(
    names: list[str], options: BuildOptions, step: Callable[[str, str], None] | None = None
) -> list[BuiltCard]:
    """Build every named model (all registered cards when ``names`` is empty)."""
    selected = names or CARDS.names()
    if options.weights is not None and len(selected) != 1:
        raise ValueError("--weights applies to exactly one model; name it")
    built = []
    for name in selected:

        def report(message: str, model: str = name) -> None:
            if step is not None:
                step(model, message)

        built.append(build_model(CARDS.build(name), options, report))
    return built
