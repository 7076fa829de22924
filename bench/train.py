"""Each family's measured gain from a CPU run of at most 15 minutes on its shipped config.

For every config named below it trains the shipped config for its ``steps`` (sized to take
well under 15 minutes on one quiet CPU; the wall-clock limit is lifted so that a busy machine
gives the same figures, only later) in a fresh run folder and reports the held-aside figures
at initialisation and at the end, next to the baseline each family must beat:

* pix2pix-facades, pix2pixhd-facades-tiny: mean L1 (in [0, 1] pixel units) between G(label
  map) and the true photo on the 37 held-aside val pairs, vs at initialisation and vs the
  mean training photo (pix2pixHD with the encoder's features of the photo).

Run: ``.venv/bin/python -m bench.train [CONFIG ...]`` (writes bench/results/train.md and
copies each run's last sample grid to bench/results/train-<config>.png).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from bench.stack import REPO, write_result
from gantry.core.settings import get_settings

CONFIGS = ("pix2pix-facades", "pix2pixhd-facades-tiny")


def main() -> None:
    from trainer import runs

    names = sys.argv[2:] if len(sys.argv) > 2 and sys.argv[1] == "train" else sys.argv[1:]
    settings = get_settings()
    lines = [
        "| config | steps | seconds | metric | at init | trained | baseline |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="gantry-bench-train-") as home:
        run_settings = settings.model_copy(update={"checkpoint_dir": Path(home)})
        for name in names or CONFIGS:
            spec = runs.RunSpec(config_name=name, overrides={"time_limit_s": None}, run_name=name)
            result = runs.run(spec, run_settings)
            metric = "val_l1"
            lines.append(
                f"| {name} | {result.step} | {result.seconds:.0f} | {metric} (lower is better)"
                f" | {result.metrics_at_init[metric]:.4f} | {result.metrics[metric]:.4f}"
                f" | {result.metrics['val_l1_mean_photo']:.4f} (mean training photo) |"
            )
            grid = Path(result.run_dir) / result.artifacts["samples"]
            shutil.copy(grid, REPO / "bench" / "results" / f"train-{name}.png")
            shutil.copy(
                Path(result.run_dir) / "curves.png",
                REPO / "bench" / "results" / f"train-{name}-curves.png",
            )
    write_result("train", "\n".join(lines))


if __name__ == "__main__":
    main()
