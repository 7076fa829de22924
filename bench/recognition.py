"""Face-recognition losses compared: the same small embedder, data and steps for each loss.

The shipped config ``recognition-orl`` (trainer/recipes/recognition.py) is trained once per
loss of trainer/losses/recognition.py, only the loss differing, and each run is measured by
verification on every pair of the held-aside ORL people (every fourth person, never trained
on) and of the Yale faces (dlib-cropped; research only), at the threshold Youden's J picks on
the training people's pairs: ROC AUC, TAR at FAR 1%, and the accuracy at that threshold.

Run: ``.venv/bin/python -m bench.recognition [LOSS ...]`` (writes bench/results/recognition.md).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.stack import write_result
from gantry.core.settings import get_settings
from trainer.losses.recognition import RECOGNITION_LOSSES

CONFIG = "recognition-orl"
SETS = (("val", "held-aside ORL people"), ("yale", "Yale"))


def main(losses: list[str]) -> None:
    from trainer import runs

    names = losses or RECOGNITION_LOSSES.names()
    settings = get_settings()
    head = " | ".join(f"{label}: AUC | TAR@FAR1% | accuracy" for _, label in SETS)
    lines = [f"| loss | steps | seconds | {head} |", "|---|---:|---:|" + "---:|" * 3 * len(SETS)]
    with tempfile.TemporaryDirectory(prefix="gantry-bench-recognition-") as home:
        run_settings = settings.model_copy(update={"checkpoint_dir": Path(home)})
        for loss in names:
            spec = runs.RunSpec(
                config_name=CONFIG,
                overrides={"time_limit_s": None, "loss": loss},
                run_name=f"{CONFIG}-{loss}",
            )
            result = runs.run(spec, run_settings)
            m = result.metrics
            cells = [
                f"{m[f'{s}_auc']:.4f} | {m[f'{s}_tar_far1']:.4f} | {m[f'{s}_accuracy']:.4f}"
                for s, _ in SETS
            ]
            lines.append(
                f"| {loss} | {result.step} | {result.seconds:.0f} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        f"Config `{CONFIG}` (`.venv/bin/python -m bench.recognition`); the threshold of each "
        "run is chosen on its training people's pairs.",
    ]
    write_result("recognition", "\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
