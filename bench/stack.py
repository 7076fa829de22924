"""Start the real served stack (`gantry up`: tritonserver + gateway) on free ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gantry.core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SET5 = DATA / "superres" / "Set5"
SET5_NAMES = ("baby", "bird", "butterfly", "head", "woman")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_GRPC_TARGET: list[str] = []


def current_grpc_target() -> str:
    """host:port of the gateway's gRPC server of the innermost running served_stack."""
    return _GRPC_TARGET[-1]


@contextmanager
def served_stack(**overrides: Any) -> Iterator[str]:
    """Run `gantry up` with its own ports and state dir; yield the gateway's base URL.

    ``overrides`` are settings fields (``tile_batch=2``); the model repository is the
    settings' (``gantry models build`` fills it).
    """
    base = get_settings()
    settings = base.model_copy(
        update={
            "state_dir": Path(tempfile.mkdtemp(prefix="gantry-bench-")),
            "triton_http_port": free_port(),
            "triton_grpc_port": free_port(),
            "triton_metrics_port": free_port(),
            "gateway_port": free_port(),
            "grpc_port": free_port(),
            "sync_budget_s": 3600.0,
            **overrides,
        }
    )
    env = settings.child_env()
    gantry = [sys.executable, "-m", "gantry.cli"]
    subprocess.run([*gantry, "up"], env=env, check=True, cwd=REPO)
    _GRPC_TARGET.append(f"127.0.0.1:{settings.grpc_port}")
    try:
        yield f"http://127.0.0.1:{settings.gateway_port}"
    finally:
        _GRPC_TARGET.pop()
        subprocess.run([*gantry, "down"], env=env, check=False, cwd=REPO)


def model_repository() -> Path:
    """The repository the benchmarks read cards and ONNX files from."""
    return get_settings().model_repository


def write_result(name: str, report: str) -> str:
    """Save a benchmark's markdown under bench/results/ and print it."""
    path = REPO / "bench" / "results" / f"{name}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(report + "\n")
    print(report)
    return report
