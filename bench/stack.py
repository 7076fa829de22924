"""Start the real served stack (`gantry up`: tritonserver + gateway) on free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
def served_stack(**overrides: str) -> Iterator[str]:
    """Run `gantry up` with its own ports and state dir; yield the gateway's base URL."""
    state = tempfile.mkdtemp(prefix="gantry-bench-")
    env = dict(os.environ)
    env.update(
        {
            "GANTRY_STATE_DIR": state,
            "GANTRY_TRITON_HTTP_PORT": str(free_port()),
            "GANTRY_TRITON_GRPC_PORT": str(free_port()),
            "GANTRY_TRITON_METRICS_PORT": str(free_port()),
            "GANTRY_GATEWAY_PORT": str(free_port()),
            "GANTRY_GRPC_PORT": str(free_port()),
            "GANTRY_SYNC_BUDGET_S": "3600",
            **{f"GANTRY_{k.upper()}": v for k, v in overrides.items()},
        }
    )
    gantry = [sys.executable, "-m", "gantry.cli"]
    subprocess.run([*gantry, "up"], env=env, check=True, cwd=REPO)
    _GRPC_TARGET.append(f"127.0.0.1:{env['GANTRY_GRPC_PORT']}")
    try:
        yield f"http://127.0.0.1:{env['GANTRY_GATEWAY_PORT']}"
    finally:
        _GRPC_TARGET.pop()
        subprocess.run([*gantry, "down"], env=env, check=False, cwd=REPO)


def write_result(name: str, report: str) -> str:
    """Save a benchmark's markdown under bench/results/ and print it."""
    path = REPO / "bench" / "results" / f"{name}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(report + "\n")
    print(report)
    return report
