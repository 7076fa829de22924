"""Fixtures that start real servers: tritonserver on the built model repository, the gateway.

The model repository is the one `make test` builds (`gantry models build`); if it is missing
the session builds it first. Ports are chosen free so a running `make run` does not clash.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gantry.cards import read_built_cards
from gantry.settings import Settings
from tests.paths import DATA, REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def model_repository() -> Path:
    repository = REPO / "model_repository"
    from trainer.cards import CARDS

    missing = [n for n in CARDS.names() if n not in read_built_cards(repository)]
    if missing:
        from trainer.export.repository import BuildOptions, build_repository

        build_repository(missing, BuildOptions(repository=repository, data_dir=DATA))
    return repository


@pytest.fixture(scope="session")
def triton_settings(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        model_repository=model_repository,
        state_dir=tmp_path_factory.mktemp("state"),
        data_dir=DATA,
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
        gateway_port=free_port(),
        grpc_port=free_port(),
    )


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
