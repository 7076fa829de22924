"""Weights Gantry trains itself: version 1 of a trained family's model, made at build time.

``gantry models build`` has no packaged weights for pix2pix and its kin; it trains the
shipped config named like the card for that config's ``build_steps`` and caches the
generator under ``<state_dir>/weights/``, keyed by the config, the trainer's code and the
data, so the next build reuses it. Longer runs are ``gantry train NAME --publish``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from gantry.core.cards import ModelCard
from gantry.core.errors import InvalidInput
from gantry.core.settings import get_settings
from gantry.core.training import load_train_config
from trainer.weights.loader import StateDict

# The code a build-time run's weights depend on.
_SOURCES = tuple(
    f"trainer/{name}"
    for name in ("archs", "data", "losses", "recipes", "loop.py", "metrics.py", "distributed.py")
)


def _data_digest(folder: Path) -> str:
    """SHA-256 over the names and sizes of the files under ``folder``: cheap, and it changes
    with the data."""
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if file.is_file():
            digest.update(f"{file.relative_to(folder)}:{file.stat().st_size};".encode())
    return digest.hexdigest()


def state_dict_from_training(card: ModelCard, data_dir: Path | None = None) -> StateDict:
    """The generator of the card's build-time run: from the cache, else trained now (CPU).

    Raises:
        InvalidInput: no shipped config is named like the card, or it has no ``build_steps``.
    """
    from trainer.data import dataset_folder
    from trainer.export.repository import digest_sources
    from trainer.loop import GENERATOR_FILE, train

    settings = get_settings()
    data_dir = data_dir or settings.data_dir
    try:
        config = load_train_config(card.name).for_build()
    except ValueError as exc:
        raise InvalidInput("invalid_config", f"config {card.name}: {exc}") from exc
    payload = {
        "config": config.model_dump(mode="json"),
        "code": digest_sources(_SOURCES),
        "data": _data_digest(dataset_folder(config.data.dataset, data_dir)),
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    run_dir = settings.state_dir / "weights" / f"{card.name}-{key}"
    weights = run_dir / GENERATOR_FILE
    if not weights.is_file():
        # A run folder left by an interrupted build resumes from its last checkpoint.
        train(config, run_dir, data_dir=data_dir, device="cpu")
    state: StateDict = torch.load(weights, map_location="cpu", weights_only=True)
    return state
