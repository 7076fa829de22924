"""Cards → weights → ONNX (→ TensorRT) → a versioned Triton model repository.

``gantry models build`` (re)builds version 1 of each model from its packaged weights; it
skips a model whose version 1 was built from exactly the same card, weights and code.
``gantry models publish`` builds the *next* version (from the packaged weights or a user's
checkpoint, later from a training run) through the same parity gate; the caller then asks the
running Triton to load it. Nothing about a version is overwritten once another exists, except
by building that same version again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gantry import __version__
from gantry.core.cards import BuildInfo, BuiltCard, ModelCard
from gantry.core.files import atomic_write
from gantry.core.repository import CONFIG_FILE, ModelRepository
from trainer.archs import build_network
from trainer.catalog import CARDS, card
from trainer.export.onnx import (
    DEFAULT_OPSET,
    check_parity,
    conv_gflops_per_pixel,
    export_onnx,
    probe_shapes,
    sha256_file,
)
from trainer.export.probes import probe_inputs
from trainer.export.triton_config import ModelFormat, Profile, render_config
from trainer.weights.loader import load_weights

Step = Callable[[str], None]
# The code a build depends on: a change to any of these files rebuilds every model.
_SOURCE_PACKAGES = ("trainer", "gantry/core")
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BuildOptions:
    """How to build models."""

    repository: Path
    data_dir: Path
    profile: Profile = "cpu"
    weights: Path | None = None
    tensorrt: bool = False
    intra_op_threads: int = 0
    tolerance: float = 1e-3
    force: bool = False
    training_run: str | None = None


def load_model(model_card: ModelCard, weights: Path | None = None) -> nn.Module:
    """The card's network with its packaged weights, or a user's official checkpoint."""
    model = build_network(model_card.architecture, **model_card.arch_kwargs)
    state_dict = load_weights(model_card, weights)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def digest_sources(paths: Iterable[str], salt: str = "") -> str:
    """SHA-256 over the Python files (names and contents) of these packages or modules,
    relative to the checkout (``"trainer/archs"``, ``"trainer/loop.py"``)."""
    digest = hashlib.sha256(salt.encode())
    for relative in paths:
        path = _SOURCE_ROOT / relative
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(_SOURCE_ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def source_digest() -> str:
    """SHA-256 over the Python sources a build depends on, and the version."""
    return digest_sources(_SOURCE_PACKAGES, salt=__version__)


def build_key(model_card: ModelCard, options: BuildOptions, sources: str) -> str:
    """What a build is made from: card, weights file, profile, and the code."""
    weights = ""
    if options.weights is not None:
        weights = sha256_file(options.weights)
    payload = {
        "card": json.loads(model_card.model_dump_json()),
        "weights": weights,
        "profile": "gpu" if options.tensorrt else options.profile,
        "tensorrt": options.tensorrt,
        "intra_op_threads": options.intra_op_threads,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _up_to_date(repository: ModelRepository, name: str, version: int, key: str) -> BuiltCard | None:
    """The stored card of ``name`` ``version`` if it was built from ``key`` and is complete."""
    if version not in repository.versions(name):
        return None
    built = repository.read(name, version)
    model_file = "model.plan" if built.build.format == "tensorrt_plan" else "model.onnx"
    complete = (repository.version_dir(name, version) / model_file).is_file() and (
        repository.model_dir(name) / CONFIG_FILE
    ).is_file()
    return built if complete and built.build.build_key == key else None


def build_version(
    model_card: ModelCard,
    options: BuildOptions,
    version: int,
    step: Step = lambda _: None,
    *,
    key: str = "",
) -> BuiltCard:
    """Export one version of a model into the repository and return its built card.

    The model file and card land in ``<name>/<version>/``; ``config.pbtxt`` is rewritten (the
    same text for every version of a card, so Triton keeps serving the other versions).
    """
    repository = ModelRepository(options.repository)
    version_dir = repository.version_dir(model_card.name, version)
    step("loading weights")
    model = load_model(model_card, options.weights)
    step("exporting ONNX")
    with torch.no_grad():
        onnx_path = export_onnx(model, model_card, version_dir / "model.onnx")
    step("checking ONNX Runtime against PyTorch")
    images = probe_inputs(model_card, options.data_dir)
    report = check_parity(model, onnx_path, model_card, images, tolerance=options.tolerance)
    model_format: ModelFormat = "onnx"
    if options.tensorrt:
        step("building TensorRT plan")
        from trainer.export.tensorrt import build_plan

        build_plan(onnx_path, model_card, version_dir / "model.plan")
        model_format = "tensorrt_plan"
    step("writing config.pbtxt")
    config = render_config(
        model_card,
        profile="gpu" if options.tensorrt else options.profile,
        model_format=model_format,
        intra_op_threads=options.intra_op_threads,
    )
    config_path = repository.model_dir(model_card.name) / CONFIG_FILE
    if not config_path.is_file() or config_path.read_text() != config:
        atomic_write(config_path, config)
    built = BuiltCard(
        card=model_card,
        build=BuildInfo(
            version=version,
            format=model_format,
            weights_file=str(options.weights) if options.weights else model_card.weights.source,
            onnx_sha256=sha256_file(onnx_path),
            opset=DEFAULT_OPSET,
            parity_max_abs_err=report.max_abs_err,
            parity_images=list(report.images),
            gflops_per_input_pixel=conv_gflops_per_pixel(model, *probe_shapes(model_card)),
            parameters=sum(p.numel() for p in model.parameters()),
            built_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            build_key=key,
            training_run=options.training_run,
        ),
    )
    repository.write_card(built)  # last: a version counts as built once its card is there
    return built


def build_repository(
    names: list[str], options: BuildOptions, step: Callable[[str, str], None] | None = None
) -> list[BuiltCard]:
    """Build version 1 of every named model (all registered cards when ``names`` is empty).

    A model whose version 1 was built from the same card, weights and code is left as it is
    unless ``options.force``.
    """
    selected = names or CARDS.names()
    if options.weights is not None and len(selected) != 1:
        raise ValueError("--weights applies to exactly one model; name it")
    repository = ModelRepository(options.repository)
    sources = source_digest()
    built = []
    for name in selected:

        def report(message: str, model: str = name) -> None:
            if step is not None:
                step(model, message)

        model_card = card(name)
        key = build_key(model_card, options, sources)
        current = None if options.force else _up_to_date(repository, name, 1, key)
        if current is not None:
            report("up to date")
            built.append(current)
            continue
        built.append(build_version(model_card, options, 1, report, key=key))
    return built


def publish_version(name: str, options: BuildOptions, step: Step = lambda _: None) -> BuiltCard:
    """Build the next version of ``name`` through the parity gate (not yet loaded anywhere)."""
    return publish_card(card(name), options, step)


def publish_card(
    model_card: ModelCard, options: BuildOptions, step: Step = lambda _: None
) -> BuiltCard:
    """Build the next version of the model ``model_card`` describes, registered or not (a
    network interpolation's new model), through the same parity gate."""
    repository = ModelRepository(options.repository)
    version = repository.next_version(model_card.name)
    key = build_key(model_card, options, source_digest())
    return build_version(model_card, options, version, step, key=key)
