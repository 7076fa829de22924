"""Versions with the stack running: publish loads version 2 into Triton without a restart,
every endpoint answers the version asked for, promote sets the default (and rolls back)."""

from __future__ import annotations

from pathlib import Path

import httpx

from deploy.triton.launcher import read_pid
from gantry.serving.triton import TritonControl
from tests.conftest import copy_repository, run_gantry, stack_settings
from tests.paths import SET5

MODEL = "realesr-animevideov3-x2"
BIRD = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()


def _upscale(client: httpx.Client, **fields: str) -> httpx.Response:
    return client.post(
        "/v1/superres", files={"image": ("bird.png", BIRD)}, data={"model": MODEL, **fields}
    )


def test_publish_serves_a_new_version_without_a_restart(
    model_repository: Path, tmp_path: Path
) -> None:
    repository = copy_repository(model_repository, tmp_path / "repository")
    settings = stack_settings(repository, tmp_path / "state")
    env = settings.child_env()
    up = run_gantry(env, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        triton_pid = read_pid(settings.state_dir / "triton.pid")

        published = run_gantry(env, "models", "publish", MODEL)
        assert published.returncode == 0, published.stdout + published.stderr
        assert f"{MODEL} version 2" in published.stdout

        # Triton's own index: both versions READY, served by the same process.
        index = TritonControl(settings.triton_http_url).index()
        states = {e["version"]: e["state"] for e in index if e["name"] == MODEL}
        assert states == {"1": "READY", "2": "READY"}
        assert read_pid(settings.state_dir / "triton.pid") == triton_pid

        base = f"http://127.0.0.1:{settings.gateway_port}"
        with httpx.Client(base_url=base, timeout=120) as client:
            listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}[MODEL]
            assert listed["version"] == 1  # publishing does not promote
            assert [(v["version"], v["ready"], v["is_default"]) for v in listed["versions"]] == [
                (1, True, True),
                (2, True, False),
            ]
            assert listed["versions"][1]["build"]["version"] == 2

            for version in ("1", "2"):
                response = _upscale(client, version=version)
                assert response.status_code == 200, response.text
                assert response.headers["x-gantry-model-version"] == version
            assert _upscale(client).headers["x-gantry-model-version"] == "1"
            missing = _upscale(client, version="999")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "unknown_version"
            assert "versions: 1, 2" in missing.json()["error"]["message"]

            promoted = run_gantry(env, "models", "promote", MODEL, "2")
            assert promoted.returncode == 0, promoted.stdout + promoted.stderr
            assert _upscale(client).headers["x-gantry-model-version"] == "2"
            listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}[MODEL]
            assert listed["version"] == 2

            rollback = run_gantry(env, "models", "promote", MODEL, "1")
            assert rollback.returncode == 0
            assert _upscale(client).headers["x-gantry-model-version"] == "1"
            refused = run_gantry(env, "models", "promote", MODEL, "7")
            assert refused.returncode == 1 and "versions: 1, 2" in refused.stdout
    finally:
        down = run_gantry(env, "down")
    assert down.returncode == 0
