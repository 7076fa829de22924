"""``gantry bench SUITE``: a benchmark or evaluation from bench/."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

BENCH_SUITES = (
    "superres",
    "superres_quality",
    "faces",
    "faces_detect",
    "faces_calibrate",
    "synthesis",
    "load",
    "train",
    "superres_train",
)


def bench(
    suite: Annotated[str, typer.Argument(help=f"one of: {', '.join(BENCH_SUITES)}")] = "superres",
) -> None:
    """Run a benchmark or evaluation from bench/ (run from the repository root)."""
    if suite not in BENCH_SUITES:
        raise typer.BadParameter(f"known suites: {', '.join(BENCH_SUITES)}")
    importlib.import_module(f"bench.{suite}").main()


def register(app: typer.Typer) -> None:
    app.command()(bench)
