"""A training run from a config name to a published model version: what ``gantry train``
and the ``train`` job kind both call."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantry.core.cards import BuiltCard
from gantry.core.errors import InvalidInput
from gantry.core.settings import Settings
from gantry.core.training import TrainConfig, load_train_config
from trainer.export.repository import BuildOptions, publish_version
from trainer.loop import GENERATOR_FILE, RESULT_FILE, RunResult, StepReport, train


@dataclass(frozen=True)
class RunSpec:
    """Which config, with which overrides, in which folder."""

    config_name: str
    overrides: Mapping[str, Any]
    run_name: str

    def config(self) -> TrainConfig:
        return load_train_config(self.config_name, self.overrides)


def default_run_name(config_name: str) -> str:
    """``<config>-<UTC time>``, e.g. ``pix2pix-facades-20261201-121314``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return f"{Path(config_name).stem}-{stamp}"


def run_dir(settings: Settings, run_name: str) -> Path:
    return settings.checkpoint_dir / run_name


def check_publishable(config: TrainConfig) -> str:
    """The model a run of ``config`` publishes to; refused when its card's network differs.

    Raises:
        InvalidInput: the config names no model, or the card's architecture is not the one
            the config trains.
    """
    from trainer.catalog import card
    from trainer.recipes import RECIPES

    if config.publish is None:
        raise InvalidInput("not_publishable", "the config names no model to publish to")
    model_card = card(config.publish)
    # A recipe is cheap to construct (networks and data come in build()).
    recipe = RECIPES.get(config.recipe)(config, data_dir=Path(), device=torch.device("cpu"))
    generator = recipe.generator_architecture()
    if generator != model_card.architecture:
        raise InvalidInput(
            "not_publishable",
            f"{config.publish} serves {model_card.architecture}; this run trains {generator}",
        )
    return config.publish


def run(
    spec: RunSpec, settings: Settings, on_step: Callable[[StepReport], None] | None = None
) -> RunResult:
    """Train (or resume) ``spec`` in ``<checkpoint_dir>/<run_name>`` on the settings' device."""
    return train(
        spec.config(),
        run_dir(settings, spec.run_name),
        data_dir=settings.data_dir,
        device=settings.train_device,
        on_step=on_step,
    )


def finished(settings: Settings, run_name: str) -> RunResult | None:
    """The result a finished run left in its folder (None while it has none)."""
    path = run_dir(settings, run_name) / RESULT_FILE
    if not path.is_file():
        return None
    return RunResult(**json.loads(path.read_text()))


def publish(
    spec: RunSpec, result: RunResult, settings: Settings, step: Callable[[str], None] = print
) -> BuiltCard:
    """Export the run's generator as the next version of its model, through the parity gate.

    The caller asks Triton to load it (the trainer does not talk to servers).
    """
    name = check_publishable(spec.config())
    options = BuildOptions(
        repository=settings.model_repository,
        data_dir=settings.data_dir,
        weights=Path(result.run_dir) / GENERATOR_FILE,
        intra_op_threads=settings.ort_intra_op_threads,
        training_run=spec.run_name,
    )
    return publish_version(name, options, step)
