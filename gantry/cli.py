"""The ``gantry`` command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from gantry.settings import Settings, get_settings
from workers.celery_app import worker_command

app = typer.Typer(help="Gantry: GAN and face models served by Triton.", no_args_is_help=True)
models_app = typer.Typer(help="Build and list the Triton model repository.", no_args_is_help=True)
app.add_typer(models_app, name="models")
console = Console()


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )


@models_app.command("build")
def models_build(
    names: Annotated[list[str] | None, typer.Argument(help="models to build; all if none")] = None,
    weights: Annotated[
        Path | None, typer.Option(help="an official checkpoint (.pth) instead of packaged weights")
    ] = None,
    profile: Annotated[str, typer.Option(help="cpu or gpu config.pbtxt")] = "cpu",
    tensorrt: Annotated[bool, typer.Option(help="also build TensorRT plans (GPU hosts)")] = False,
    repository: Annotated[Path | None, typer.Option(help="model repository directory")] = None,
) -> None:
    """Import weights, export ONNX, check it against PyTorch, write config.pbtxt and card."""
    from trainer.cards import CARDS
    from trainer.export.repository import BuildOptions, build_repository

    settings = get_settings()
    if profile not in ("cpu", "gpu"):
        raise typer.BadParameter("profile must be cpu or gpu")
    selected = names or CARDS.names()
    options = BuildOptions(
        repository=repository or settings.model_repository,
        data_dir=settings.data_dir,
        profile="gpu" if profile == "gpu" else "cpu",
        weights=weights,
        tensorrt=tensorrt,
        intra_op_threads=settings.ort_intra_op_threads,
    )
    table = Table("model", "params", "MFLOP/input px", "parity max|err|")
    with _progress() as progress:
        task = progress.add_task("building", total=len(selected))
        for name in selected:

            def step(model: str, message: str) -> None:
                progress.update(task, description=f"{model}: {message}")

            (built,) = build_repository([name], options, step)
            progress.advance(task)
            table.add_row(
                name,
                f"{built.build.parameters / 1e6:.2f}M",
                f"{built.build.gflops_per_input_pixel * 1e3:.3f}",
                f"{built.build.parity_max_abs_err:.2e}",
            )
        progress.update(task, description="done")
    console.print(table)
    console.print(f"model repository: {options.repository}")


@models_app.command("list")
def models_list() -> None:
    """The models built in the repository."""
    from gantry.cards import read_built_cards

    table = Table("name", "task", "scale", "tile", "licence", "built")
    for name, built in read_built_cards(get_settings().model_repository).items():
        c = built.card
        table.add_row(name, c.task, str(c.scale), str(c.tile_size), c.license, built.build.built_at)
    console.print(table)


def _triton(settings: Settings):  # type: ignore[no-untyped-def]
    from deploy.triton.launcher import TritonServer

    return TritonServer(
        repository=settings.model_repository,
        state_dir=settings.state_dir,
        http_port=settings.triton_http_port,
        grpc_port=settings.triton_grpc_port,
        metrics_port=settings.triton_metrics_port,
        host=settings.triton_host,
    )


def _gateway_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "gateway.app:create_app",
        "--factory",
        "--host",
        settings.gateway_host,
        "--port",
        str(settings.gateway_port),
        "--no-access-log",
    ]


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


@app.command()
def up(
    foreground: Annotated[
        bool, typer.Option(help="stay in the foreground until Ctrl-C, then stop everything")
    ] = False,
) -> None:
    """Start Triton on the model repository, wait for it, then the gateway and a job worker."""
    settings = get_settings()
    if not any(settings.model_repository.glob("*/config.pbtxt")):
        console.print("[red]The model repository is empty: run `gantry models build` first.")
        raise typer.Exit(1)
    triton = _triton(settings)
    with console.status("starting tritonserver (loading every model)…"):
        triton.start(timeout_s=settings.triton_start_timeout_s)
    console.print(
        f"[green]Triton ready[/] on :{settings.triton_http_port} (HTTP), "
        f":{settings.triton_grpc_port} (gRPC), :{settings.triton_metrics_port} (metrics)"
    )
    log = (settings.state_dir / "gateway.log").open("ab")
    gateway = subprocess.Popen(
        _gateway_command(settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    (settings.state_dir / "gateway.pid").write_text(str(gateway.pid))
    worker_log = (settings.state_dir / "worker.log").open("ab")
    worker = subprocess.Popen(
        worker_command(), stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True
    )
    (settings.state_dir / "worker.pid").write_text(str(worker.pid))
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    if not _wait_http(f"{base}/readyz", 60):
        console.print(f"[red]gateway not ready; see {settings.state_dir / 'gateway.log'}")
        _stop_all(settings)
        raise typer.Exit(1)
    console.print(f"[green]Gateway ready[/] at {base}  — API docs: {base}/docs")
    console.print(
        f"gRPC FaceVerification on :{settings.grpc_port}; a job worker is running "
        f"(broker: {settings.effective_broker_url.split('://')[0]})"
    )
    console.print(
        f"Try: curl -F image=@../shared/data/superres/Set5/LR_bicubic/X4/babyx4.png "
        f"{base}/v1/superres -o out.png"
    )
    if not foreground:
        console.print("Stop with `gantry down`.")
        return
    console.print("Press Ctrl-C to stop.")
    # `docker stop` and process managers send SIGTERM: stop the servers as for Ctrl-C. SIGINT
    # is set too, because a process started in the background inherits it as ignored.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        while (
            gateway.poll() is None
            and worker.poll() is None
            and triton.process
            and triton.process.poll() is None
        ):
            time.sleep(1)
        console.print("[red]a server exited; stopping")
    except KeyboardInterrupt:
        pass
    finally:
        _stop_all(settings)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_all(settings: Settings) -> None:
    from deploy.triton.launcher import stop_pid_file

    # A worker can hang in a warm shutdown on the SQLite broker: it gets 15 s, then SIGKILL.
    if stop_pid_file(settings.state_dir / "worker.pid"):
        console.print("worker stopped")
    if stop_pid_file(settings.state_dir / "gateway.pid"):
        console.print("gateway stopped")
    if _triton(settings).stop():
        console.print("tritonserver stopped")


@app.command()
def down() -> None:
    """Stop the worker, the gateway and Triton started by `gantry up`."""
    _stop_all(get_settings())


@app.command()
def status() -> None:
    """Whether Triton and the gateway answer (and where)."""
    settings = get_settings()
    triton_ok = _triton(settings).is_ready()
    base = f"http://{settings.gateway_host}:{settings.gateway_port}"
    gateway_ok = _wait_http(f"{base}/healthz", 1)
    console.print(f"triton  {'[green]ready' if triton_ok else '[red]down'}")
    console.print(f"gateway {'[green]up' if gateway_ok else '[red]down'}  {base}")


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "inference,training",
) -> None:
    """Run a job worker in the foreground (Celery, concurrency 1)."""
    os.execv(sys.executable, worker_command(queues))


jobs_app = typer.Typer(help="Follow the jobs of the jobs API.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("watch")
def jobs_watch(
    job_id: str,
    url: Annotated[str | None, typer.Option(help="gateway base URL")] = None,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 0.5,
) -> None:
    """A live progress bar of one job until it ends; exit 1 unless it succeeded."""
    import httpx

    settings = get_settings()
    base = url or f"http://{settings.gateway_host}:{settings.gateway_port}"
    with _progress() as progress, httpx.Client(timeout=10) as client:
        task = progress.add_task(job_id[:8], total=1000)
        while True:
            response = client.get(f"{base}/v1/jobs/{job_id}")
            if response.status_code != 200:
                console.print(f"[red]{response.json()['error']['message']}")
                raise typer.Exit(1)
            job = response.json()
            progress.update(
                task,
                completed=int(job["progress"] * 1000),
                description=f"{job['kind']} {job['status']}: {job['stage']}",
            )
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(interval)
    if job["status"] != "succeeded":
        console.print(f"[red]{job['status']}[/]: {job.get('error')}")
        raise typer.Exit(1)
    console.print(f"[green]succeeded[/]: GET {base}/v1/jobs/{job_id}/result")


BENCH_SUITES = (
    "superres",
    "superres_quality",
    "faces",
    "faces_detect",
    "faces_calibrate",
    "synthesis",
)


@app.command()
def bench(
    suite: Annotated[str, typer.Argument(help=f"one of: {', '.join(BENCH_SUITES)}")] = "superres",
) -> None:
    """Run a benchmark or evaluation from bench/ (run from the repository root)."""
    if suite not in BENCH_SUITES:
        raise typer.BadParameter(f"known suites: {', '.join(BENCH_SUITES)}")
    import importlib

    importlib.import_module(f"bench.{suite}").main()


if __name__ == "__main__":
    app()
