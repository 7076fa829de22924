"""The ``gantry`` command line: the top layer, which starts and drives everything."""

from __future__ import annotations

from typing import Annotated

import typer

from gantry import __version__
from gantry.cli import bench, jobs, keys, models, stack, train
from gantry.cli.console import console

app = typer.Typer(help="Gantry: GAN and face models served by Triton.", no_args_is_help=True)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"gantry {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Gantry: GAN and face models served by Triton."""


app.add_typer(models.app, name="models")
app.add_typer(jobs.app, name="jobs")
app.add_typer(keys.app, name="keys")
stack.register(app)
bench.register(app)
train.register(app)

__all__ = ["app"]
