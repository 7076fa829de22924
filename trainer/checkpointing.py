"""Training checkpoints: everything a run needs to continue where it stopped.

``<run>/checkpoints/step-000200.pt`` holds the step, the networks, the optimisers (and AMP
scalers), the EMA generator, the RNG state and the metrics at initialisation; it is written
to a temporary name and renamed, so a crash mid-write never leaves a torn checkpoint, and the
oldest are pruned beyond ``keep``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

_NAME = re.compile(r"step-(\d{6,})\.pt")


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's complete checkpoints, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name))]
    return sorted(found)


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint of the run, if any."""
    found = checkpoints(run_dir)
    return found[-1][1] if found else None


def save(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as step ``step``'s checkpoint atomically; prune to the newest ``keep``."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:06d}.pt"
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)
    for _, old in checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save` (tensors on the CPU)."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state
