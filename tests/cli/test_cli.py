"""`gantry up` / `gantry down` / `gantry status` start and stop the real servers."""

from __future__ import annotations

import urllib.request
import zipfile
from pathlib import Path

import httpx

from gantry import __version__
from gantry.core.settings import Settings
from tests.conftest import run_gantry, stack_settings
from tests.paths import SET5


def test_up_serves_superres_and_down_stops_everything(
    model_repository: Path, tmp_path: Path
) -> None:
    settings = stack_settings(model_repository, tmp_path)
    env = settings.child_env()
    up = run_gantry(env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Gateway ready" in up.stdout
        base = f"http://127.0.0.1:{settings.gateway_port}"
        with urllib.request.urlopen(f"{base}/readyz", timeout=10) as response:
            assert response.status == 200
        status = run_gantry(env, "status")
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
        watch = run_gantry(env, "jobs", "watch", job["id"], "--url", base)
        assert watch.returncode == 0, watch.stdout + watch.stderr
        assert "succeeded" in watch.stdout

        # The same through `gantry jobs`: upload and submit, follow, list, fetch the result.
        bird = SET5 / "LR_bicubic" / "X4" / "birdx4.png"
        submitted = run_gantry(
            env,
            "jobs",
            "submit",
            "superres_batch",
            "--file",
            str(bird),
            "--set",
            "model=realesr-animevideov3-x2",
            "--set",
            "tile=0",
            "--watch",
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = submitted.stdout.split("queued\n", 1)[1].splitlines()[0].strip()
        listed = run_gantry(env, "jobs", "list", "--status", "succeeded")
        assert job_id[:8] in listed.stdout and job["id"][:8] in listed.stdout
        result = run_gantry(env, "jobs", "result", job_id, "-o", str(tmp_path / "out.zip"))
        assert result.returncode == 0, result.stdout + result.stderr
        with zipfile.ZipFile(tmp_path / "out.zip") as archive:
            assert archive.namelist() == ["birdx4_x2.png"]
        cancelled = run_gantry(env, "jobs", "cancel", job_id)
        assert "succeeded" in cancelled.stdout  # a finished job stays as it ended
        refused = run_gantry(env, "jobs", "submit", "no_such_kind")
        assert refused.returncode == 1 and "kind must be one of" in refused.stdout
        version = run_gantry(env, "--version")
        assert version.stdout.strip() == f"gantry {__version__}"
    finally:
        down = run_gantry(env, "down")
    assert down.returncode == 0
    assert "tritonserver stopped" in down.stdout and "gateway stopped" in down.stdout
    assert "worker stopped" in down.stdout
    assert not (tmp_path / "triton.pid").exists()
    after = run_gantry(env, "status")
    assert "down" in after.stdout


def test_up_refuses_an_empty_repository(tmp_path: Path) -> None:
    env = Settings(model_repository=tmp_path, state_dir=tmp_path).child_env()
    result = run_gantry(env, "up")
    assert result.returncode == 1 and "gantry models build" in result.stdout
