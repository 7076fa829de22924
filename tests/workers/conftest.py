"""Real job workers (Celery processes), a private Redis, the gateway, and the real Triton."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gantry.core.settings import Settings
from tests.conftest import free_port
from tests.paths import REPO
from workers.celery_app import worker_command

FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class RedisServer:
    """A redis-server of our own, with AOF persistence as in the deployment config."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True)
            self.process.wait(timeout=20)
        self.process = None


@dataclass
class JobStack:
    """Settings, environment and worker processes of one test."""

    settings: Settings
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        log = (self.settings.state_dir / f"worker{len(self.workers)}.log").open("ab")
        name = f"test{len(self.workers)}@%h"
        process = subprocess.Popen(
            [*worker_command(name=name), "--without-heartbeat"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (main process and pool child)."""
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                self.kill_worker(process, signal.SIGTERM)

    def worker_log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:]
            for p in sorted(self.settings.state_dir.glob("worker*.log"))
        )


def make_stack(base: Settings, state_dir: Path, broker_url: str = "") -> JobStack:
    settings = base.model_copy(
        update={
            "state_dir": state_dir,
            "broker_url": broker_url,
            "job_heartbeat_timeout_s": 3.0,
            "broker_visibility_timeout_s": 8,
        }
    )
    return JobStack(settings=settings, env=settings.child_env(PYTHONUNBUFFERED="1"))


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make test` (it installs Debian's redis)")
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def job_stack(triton: object, triton_settings: Settings, tmp_path: Path) -> Iterator[JobStack]:
    """Embedded (SQLite) broker; the test starts the workers it needs."""
    stack = make_stack(triton_settings, tmp_path / "state")
    yield stack
    stack.stop()


@pytest.fixture()
def redis_stack(
    triton: object, triton_settings: Settings, tmp_path: Path, redis_server: RedisServer
) -> Iterator[JobStack]:
    """Redis broker (a private redis-server with persistence)."""
    stack = make_stack(triton_settings, tmp_path / "state", redis_server.url)
    yield stack
    stack.stop()


def api(stack: JobStack) -> TestClient:
    """The gateway app on the stack's settings (use as a context manager)."""
    from gateway.app import create_app

    return TestClient(create_app(stack.settings.model_copy(update={"grpc_enabled": False})))


def wait_for(
    client: TestClient | httpx.Client,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    timeout_s: float = 120,
    stack: JobStack | None = None,
) -> dict[str, Any]:
    """Poll a job until ``until(job)``; fail with the worker log on timeout."""
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.2)
    log = stack.worker_log() if stack else ""
    raise AssertionError(f"job {job_id} stuck at {job}\n{log}")
