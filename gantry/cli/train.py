"""``gantry train CONFIG``: one training run, on this process or under torchrun."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Annotated

import typer

from gantry.cli.console import console, progress
from gantry.core.errors import GantryError
from gantry.core.settings import get_settings
from gantry.core.training import load_train_config, parse_overrides, shipped_configs

# torchrun's own options would swallow a --run among the script's arguments (argparse
# prefix matching: --run-path), so the processes it starts get the run name from here.
RUN_ENV = "GANTRY_TRAIN_RUN"

if TYPE_CHECKING:
    from trainer.loop import RunResult, StepReport
    from trainer.runs import RunSpec


def train(
    config: Annotated[
        str, typer.Argument(help="a shipped config (see --list) or a path to a .yaml file")
    ] = "",
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a config key: --set steps=30 --set optim.lr=1e-4"),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            envvar=RUN_ENV, help="run name (folder under checkpoint_dir); an existing run resumes"
        ),
    ] = None,
    publish: Annotated[
        bool, typer.Option(help="export the trained generator as the next model version")
    ] = False,
    nproc: Annotated[int, typer.Option(min=1, help="processes on this machine (DDP)")] = 1,
    nnodes: Annotated[int, typer.Option(min=1, help="machines in the run")] = 1,
    node_rank: Annotated[int, typer.Option(min=0, help="this machine's index")] = 0,
    master_addr: Annotated[
        str | None, typer.Option(help="host of node 0 (rendezvous) when nnodes > 1")
    ] = None,
    master_port: Annotated[int, typer.Option(help="rendezvous port on node 0")] = 29500,
    list_configs: Annotated[bool, typer.Option("--list", help="list shipped configs")] = False,
) -> None:
    """Train a GAN from a config; checkpoints, metrics, samples and curves go to the run's
    folder, and with --publish the generator becomes the next version Triton serves."""
    if list_configs or not config:
        for name in shipped_configs():
            console.print(f"{name}: {load_train_config(name).description}")
        return
    settings = get_settings()
    try:
        values = parse_overrides(overrides or [])
        loaded = load_train_config(config, values)
    except GantryError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from error
    from trainer import runs
    from trainer.distributed import Launch, torchrun_command

    run_name = run or runs.default_run_name(config)
    spec = runs.RunSpec(config_name=config, overrides=values, run_name=run_name)
    if publish:
        runs.check_publishable(loaded)
    under_torchrun = "RANK" in os.environ
    if (nproc > 1 or nnodes > 1) and not under_torchrun:
        launch = Launch(nproc, nnodes, node_rank, master_addr, master_port)
        args = ["gantry.cli", "train", config]
        for pair in overrides or []:
            args += ["--set", pair]
        console.print(f"torchrun: {nnodes} node(s) x {nproc} process(es), run {run_name}")
        env = settings.child_env()
        env[RUN_ENV] = run_name
        completed = subprocess.run(torchrun_command(launch, args), env=env)
        if completed.returncode != 0:
            raise typer.Exit(completed.returncode)
        if node_rank != 0:  # node 0 holds rank 0: it reports and publishes
            return
        result = runs.finished(settings, run_name)
        if result is None:
            console.print(f"[red]run {run_name} left no result")
            raise typer.Exit(1)
    else:
        result = _train_here(spec, show=int(os.environ.get("RANK", "0")) == 0)
        if under_torchrun:
            return
    console.print(f"[green]run {run_name}[/] stopped at step {result.step} ({result.stopped})")
    for key, value in result.metrics.items():
        start = result.metrics_at_init.get(key)
        before = f" (at init {start:.4f})" if start is not None else ""
        console.print(f"  {key}: {value:.4f}{before}")
    for note in result.notes:
        console.print(f"  note: {note}")
    console.print(f"  files: {result.run_dir}")
    if publish:
        _publish(spec, result)


def _train_here(spec: RunSpec, show: bool) -> RunResult:
    from trainer import runs

    settings = get_settings()
    if not show:
        return runs.run(spec, settings)
    with progress() as bar:
        task = bar.add_task(f"training {spec.run_name}", total=None)

        def on_step(report: StepReport) -> None:
            losses = " ".join(f"{k} {v:.3f}" for k, v in report.losses.items())
            bar.update(
                task,
                completed=report.step,
                total=report.steps,
                description=f"{spec.run_name} {losses}",
            )

        return runs.run(spec, settings, on_step)


def _publish(spec: RunSpec, result: RunResult) -> None:
    from gantry.cli.models import load_into_triton
    from trainer import runs

    settings = get_settings()
    with console.status("publishing…") as status:
        built = runs.publish(spec, result, settings, lambda m: status.update(f"publishing: {m}"))
    console.print(
        f"[green]{built.card.name} version {built.build.version}[/] built from run "
        f"{spec.run_name} (parity max |err| {built.build.parity_max_abs_err:.2e})"
    )
    load_into_triton(settings, built.card.name)


def register(app: typer.Typer) -> None:
    app.command()(train)
