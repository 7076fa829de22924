"""`gantry up` / `gantry down` / `gantry status` start and stop the real servers."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx

from gantry.core.settings import Settings
from tests.conftest import stack_settings
from tests.paths import REPO, SET5


def _gantry(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gantry.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_up_serves_superres_and_down_stops_everything(
    model_repository: Path, tmp_path: Path
) -> None:
    settings = stack_settings(model_repository, tmp_path)
    env = settings.child_env()
    up = _gantry(env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Gateway ready" in up.stdout
        base = f"http://127.0.0.1:{settings.gateway_port}"
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
            assert response.status == 200
        status = _gantry(env, "status")
        assert "ready" in status.stdout and "up" in status.stdout
        # `gantry up` also started a job worker: a batch job runs, and `jobs watch` follows it.
        lr = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
        with httpx.Client(base_url=base, timeout=30) as client:
            input_id = client.post("/v1/inputs", files={"file": ("bird.png", lr)}).json()["id"]
            job = client.post(
                "/v1/jobs",
                json={
                    "kind": "superres_batch",
                    "params": {"inputs": [input_id], "model": "realesr-animevideov3-x2"},
                },
            ).json()
        watch = _gantry(env, "jobs", "watch", job["id"], "--url", base)
        assert watch.returncode == 0, watch.stdout + watch.stderr
        assert "succeeded" in watch.stdout
    finally:
        down = _gantry(env, "down")
    assert down.returncode == 0
    assert "tritonserver stopped" in down.stdout and "gateway stopped" in down.stdout
    assert "worker stopped" in down.stdout
    assert not (tmp_path / "triton.pid").exists()
    after = _gantry(env, "status")
    assert "down" in after.stdout


def test_up_refuses_an_empty_repository(tmp_path: Path) -> None:
    env = Settings(model_repository=tmp_path, state_dir=tmp_path).child_env()
    result = _gantry(env, "up")
    assert result.returncode == 1 and "gantry models build" in result.stdout
