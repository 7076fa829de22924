"""A job submitted while Triton is down waits, retries with backoff, and succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.triton.launcher import TritonServer
from gantry.core.settings import Settings
from tests.conftest import free_port
from tests.paths import SET5
from tests.workers.conftest import FINAL, api, make_stack, wait_for

MODEL = "realesr-animevideov3-x2"


@pytest.mark.usefixtures("triton")
def test_transient_triton_outage_is_retried(triton_settings: Settings, tmp_path: Path) -> None:
    # A worker that talks to a Triton that is not up yet.
    ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
    base = triton_settings.model_copy(
        update={"triton_http_port": ports["http"], "triton_grpc_port": ports["grpc"]}
    )
    stack = make_stack(base, tmp_path / "state")
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / MODEL).symlink_to(triton_settings.model_repository / MODEL)
    stack.start_worker()
    try:
        with api(stack) as client:
            data = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
            input_id = client.post("/v1/inputs", files={"file": ("bird.png", data)}).json()["id"]
            job_id = client.post(
                "/v1/jobs",
                json={"kind": "superres_batch", "params": {"inputs": [input_id], "model": MODEL}},
            ).json()["id"]
            waiting = wait_for(
                client, job_id, lambda j: j["stage"] == "waiting for Triton", stack=stack
            )
            assert waiting["status"] == "queued" and waiting["attempts"] >= 1
            server = TritonServer(
                repository=repository,
                state_dir=tmp_path / "triton",
                http_port=ports["http"],
                grpc_port=ports["grpc"],
                metrics_port=ports["metrics"],
            )
            with server.running(timeout_s=180):
                job = wait_for(
                    client, job_id, lambda j: j["status"] in FINAL, timeout_s=120, stack=stack
                )
            assert job["status"] == "succeeded", job
            assert job["attempts"] >= 2
    finally:
        stack.stop()
