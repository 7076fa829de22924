"""Fixtures that start real servers: tritonserver on a model repository built for the session,
the gateway.

Everything the tests write lives in temporary directories: ``GANTRY_HOME`` points at one for
the whole session (so the settings' defaults, the weights cache included, land there), and
the model repository is built into another by the export stage itself. Set
``GANTRY_TEST_PREBUILT`` to a built repository to start from a hard-linked copy of it (the
build then only redoes what is out of date). Ports are chosen free so a running `make run`
does not clash.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gantry.core.settings import Settings, get_settings
from tests.paths import DATA, REPO

_HOME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    home = tempfile.mkdtemp(prefix="gantry-test-home-")
    _HOME.append(home)
    os.environ["GANTRY_HOME"] = home
    get_settings.cache_clear()


def pytest_unconfigure(config: pytest.Config) -> None:
    for home in _HOME:
        shutil.rmtree(home, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_gantry(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The `gantry` command line in a child process with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "gantry.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def copy_repository(source: Path, target: Path) -> Path:
    """A copy of a model repository a test may publish into (files hard-linked: builds only
    ever add files or rename over them, so the source is never changed)."""
    shutil.copytree(source, target, copy_function=os.link)
    return target


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every registered model, built (version 1) into a temporary repository."""
    from trainer.export.repository import BuildOptions, build_repository

    root = tmp_path_factory.mktemp("model_repository")
    prebuilt = os.environ.get("GANTRY_TEST_PREBUILT")
    if prebuilt:
        root.rmdir()
        copy_repository(Path(prebuilt), root)
    build_repository([], BuildOptions(repository=root, data_dir=DATA))
    return root


def stack_settings(model_repository: Path, state_dir: Path) -> Settings:
    """Settings of a stack of our own: this repository, this state dir, free ports."""
    return Settings(
        model_repository=model_repository,
        state_dir=state_dir,
        data_dir=DATA,
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
        gateway_port=free_port(),
        grpc_port=free_port(),
    )


@pytest.fixture(scope="session")
def triton_settings(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return stack_settings(model_repository, tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="session")
def triton(triton_settings: Settings) -> Iterator[object]:
    """A real tritonserver serving every built model, stopped at the end of the session."""
    from deploy.triton.launcher import TritonServer

    server = TritonServer(
        repository=triton_settings.model_repository,
        state_dir=triton_settings.state_dir,
        http_port=triton_settings.triton_http_port,
        grpc_port=triton_settings.triton_grpc_port,
        metrics_port=triton_settings.triton_metrics_port,
    )
    with server.running(timeout_s=300):
        yield server


@contextmanager
def live_gateway(settings: Settings) -> Iterator[str]:
    """The gateway app served over real HTTP by uvicorn (in a thread), as `gantry up` serves
    it: the guarded h11 protocol, bounded connections. Yields the base URL."""
    import uvicorn

    from gateway.app import create_app
    from gateway.server import guarded

    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=settings.gateway_port,
        http=guarded(settings.header_timeout_s),
        limit_concurrency=settings.max_connections,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{settings.gateway_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture()
def gateway_settings(triton_settings: Settings) -> Settings:
    """Settings a test may copy and change (limits, budget) for its own app."""
    return triton_settings.model_copy()


@pytest.fixture()
def client(triton: object, gateway_settings: Settings) -> Iterator[TestClient]:
    """The gateway app, talking to the real Triton."""
    from gateway.app import create_app

    with TestClient(create_app(gateway_settings)) as test_client:
        yield test_client
