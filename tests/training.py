"""Overrides that make a shipped training config a few-seconds run for tests."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.paths import DATA, REPO
from trainer.loop import RESULT_FILE
from trainer.recipes.base import EVALUATION_DIR

# 64 px, two images a step, four held aside, a checkpoint every 4 steps.
SMALL_RUN: dict[str, Any] = {
    "data.size": 64,
    "data.val_images": 4,
    "batch_size": 2,
    "log_every": 2,
    "checkpoint_every": 4,
    "sample_every": 4,
    "time_limit_s": None,
}


def train_under_torchrun(
    config: str, overrides: dict[str, Any], home: Path, nproc: int = 2
) -> tuple[dict[str, Any], str]:
    """`gantry train CONFIG --nproc N --run ddp` in a child process with GANTRY_HOME=home;
    returns the run's result.json and the command's stdout (the test fails on a non-zero exit).
    """
    env = {**os.environ, "GANTRY_HOME": str(home), "GANTRY_DATA_DIR": str(DATA)}
    sets = [f"--set={k}={'null' if v is None else v}" for k, v in overrides.items()]
    completed = subprocess.run(
        [sys.executable, "-m", "gantry.cli", "train", config, *sets,
         "--nproc", str(nproc), "--run", "ddp"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result: dict[str, Any] = json.loads((home / "checkpoints" / "ddp" / RESULT_FILE).read_text())
    return result, completed.stdout


def seed_evaluation_cache(cache: Path, run_dir: Path) -> None:
    """Copy the classifier(s) a module trained once into a run's evaluation cache, so the
    run reads them instead of training its own."""
    (run_dir / EVALUATION_DIR).mkdir(parents=True, exist_ok=True)
    for file in cache.glob("*.pt"):
        shutil.copy(file, run_dir / EVALUATION_DIR / file.name)
