"""``gantry up | down | status | worker``: the local stack (Triton, gateway, a job worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Annotated

import typer

from deploy.triton.launcher import TritonServer, stop_pid_file
from gantry.cli.console import console
from gantry.core.repository import ModelRepository
from gantry.core.settings import Settings, get_settings
from workers.celery_app import worker_command


def triton_server(settings: Settings) -> TritonServer:
    """The Triton process of these settings (started or not)."""
    return TritonServer(
        repository=settings.model_repository,
        state_dir=settings.state_dir,
        http_port=settings.triton_http_port,
        grpc_port=settings.triton_grpc_port,
        metrics_port=settings.triton_metrics_port,
        host=settings.triton_host,
    )


def gateway_command(settings: Settings) -> list[str]:
    """The gateway's command line (uvicorn on the app factory)."""
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
        # h11 with a deadline for request headers; bounded connections (503 beyond).
        "--http",
        "gateway.server:GuardedH11Protocol",
        "--limit-concurrency",
        str(settings.max_connections),
    ]


def gateway_url(settings: Settings) -> str:
    return f"http://{settings.gateway_host}:{settings.gateway_port}"


def wait_http(url: str, timeout_s: float) -> bool:
    """Poll ``url`` until it answers 200 or ``timeout_s`` passes."""
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


def up(
    foreground: Annotated[
        bool, typer.Option(help="stay in the foreground until Ctrl-C, then stop everything")
    ] = False,
) -> None:
    """Start Triton on the model repository, wait for it, then the gateway and a job worker."""
    settings = get_settings()
    if not ModelRepository(settings.model_repository).names():
        console.print("[red]The model repository is empty: run `gantry models build` first.")
        raise typer.Exit(1)
    triton = triton_server(settings)
    with console.status("starting tritonserver (loading every model)…"):
        triton.start(timeout_s=settings.triton_start_timeout_s)
    console.print(
        f"[green]Triton ready[/] on :{settings.triton_http_port} (HTTP), "
        f":{settings.triton_grpc_port} (gRPC), :{settings.triton_metrics_port} (metrics)"
    )
    env = settings.child_env()
    log = (settings.state_dir / "gateway.log").open("ab")
    gateway = subprocess.Popen(
        gateway_command(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    (settings.state_dir / "gateway.pid").write_text(str(gateway.pid))
    worker_log = (settings.state_dir / "worker.log").open("ab")
    worker = subprocess.Popen(
        worker_command(),
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    (settings.state_dir / "worker.pid").write_text(str(worker.pid))
    base = gateway_url(settings)
    if not wait_http(f"{base}/readyz", 60):
        console.print(f"[red]gateway not ready; see {settings.state_dir / 'gateway.log'}")
        stop_all(settings)
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
        stop_all(settings)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_all(settings: Settings) -> None:
    """Stop the worker, the gateway and Triton of these settings."""
    # A worker can hang in a warm shutdown on the SQLite broker: it gets 15 s, then SIGKILL.
    if stop_pid_file(settings.state_dir / "worker.pid"):
        console.print("worker stopped")
    if stop_pid_file(settings.state_dir / "gateway.pid"):
        console.print("gateway stopped")
    if triton_server(settings).stop():
        console.print("tritonserver stopped")


def down() -> None:
    """Stop the worker, the gateway and Triton started by `gantry up`."""
    stop_all(get_settings())


def status() -> None:
    """Whether Triton and the gateway answer (and where)."""
    settings = get_settings()
    triton_ok = triton_server(settings).is_ready()
    base = gateway_url(settings)
    gateway_ok = wait_http(f"{base}/healthz", 1)
    console.print(f"triton  {'[green]ready' if triton_ok else '[red]down'}")
    console.print(f"gateway {'[green]up' if gateway_ok else '[red]down'}  {base}")


def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "inference,training",
) -> None:
    """Run a job worker in the foreground (Celery, concurrency 1)."""
    os.execv(sys.executable, worker_command(queues))


def gateway() -> None:
    """Run the gateway (HTTP and gRPC) in the foreground: what containers run."""
    os.execv(sys.executable, gateway_command(get_settings()))


def register(app: typer.Typer) -> None:
    for command in (up, down, status, worker, gateway):
        app.command()(command)
