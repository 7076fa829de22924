"""Overrides that make a shipped training config a few-seconds run for tests."""

from typing import Any

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
