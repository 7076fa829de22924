"""Nothing is lost: worker kill -9, Redis restart, cancel of running work."""

from __future__ import annotations

import io
import time
import zipfile

from PIL import Image

from tests.paths import SET5
from tests.workers.conftest import FINAL, JobStack, RedisServer, api, wait_for

FAST = "realesr-animevideov3-x4"


def _long_input(client) -> str:  # type: ignore[no-untyped-def]
    """A 256x256 photo that, with 56 px tiles, takes a few hundred tiles (~10 s here)."""
    image = Image.open(SET5 / "HR" / "baby.png").convert("RGB").resize((256, 256))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    response = client.post("/v1/inputs", files={"file": ("baby256.png", buffer.getvalue())})
    return str(response.json()["id"])


def _submit(client, input_id: str, tile: int = 56) -> str:  # type: ignore[no-untyped-def]
    body = {"kind": "superres_batch", "params": {"inputs": [input_id], "model": FAST, "tile": tile}}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _kill_mid_job_then_recover(stack: JobStack) -> dict:  # type: ignore[type-arg]
    first = stack.start_worker()
    with api(stack) as client:
        job_id = _submit(client, _long_input(client))
        wait_for(
            client, job_id, lambda j: j["status"] == "running" and j["progress"] > 0.1, stack=stack
        )
        stack.kill_worker(first)  # SIGKILL to the whole worker: no cleanup, no ack
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        stack.start_worker()
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, timeout_s=180, stack=stack)
        with zipfile.ZipFile(io.BytesIO(client.get(f"/v1/jobs/{job_id}/result").content)) as z:
            assert Image.open(io.BytesIO(z.read("baby256_x4.png"))).size == (1024, 1024)
    return job


def test_kill_9_mid_job_embedded_broker(job_stack: JobStack) -> None:
    job = _kill_mid_job_then_recover(job_stack)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job


def test_kill_9_mid_job_redis_broker(redis_stack: JobStack) -> None:
    job = _kill_mid_job_then_recover(redis_stack)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job


def test_redis_restart_keeps_queued_jobs(redis_stack: JobStack, redis_server: RedisServer) -> None:
    with api(redis_stack) as client:
        inputs = []
        for name in ("baby", "bird", "head"):
            data = (SET5 / "LR_bicubic" / "X4" / f"{name}x4.png").read_bytes()
            inputs.append(
                client.post("/v1/inputs", files={"file": (f"{name}.png", data)}).json()["id"]
            )
        jobs = [_submit(client, i, tile=0) for i in inputs]  # queued: no worker yet
        redis_server.stop()  # SHUTDOWN: the append-only file has every queued message
        redis_server.start()
        redis_stack.start_worker()
        finished = [
            wait_for(client, j, lambda x: x["status"] in FINAL, stack=redis_stack) for j in jobs
        ]
        assert [j["status"] for j in finished] == ["succeeded"] * 3
        assert [j["attempts"] for j in finished] == [1, 1, 1]  # none ran twice
        for job_id, name in zip(jobs, ("baby", "bird", "head"), strict=True):
            with zipfile.ZipFile(io.BytesIO(client.get(f"/v1/jobs/{job_id}/result").content)) as z:
                assert z.namelist() == [f"{name}_x4.png"]


def test_cancel_stops_a_running_job_at_its_next_tile(job_stack: JobStack) -> None:
    job_stack.start_worker()
    with api(job_stack) as client:
        job_id = _submit(client, _long_input(client))
        running = wait_for(
            client,
            job_id,
            lambda j: j["status"] == "running" and j["progress"] > 0.05,
            stack=job_stack,
        )
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
        started = time.monotonic()
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, stack=job_stack)
        assert job["status"] == "cancelled"
        assert time.monotonic() - started < 5  # a tile batch takes well under a second here
        assert running["progress"] <= job["progress"] < 1.0
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409
        # The worker is free again: a new job runs.
        small = client.post(
            "/v1/inputs",
            files={"file": ("b.png", (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes())},
        ).json()["id"]
        follow = _submit(client, small, tile=0)
        assert (
            wait_for(client, follow, lambda j: j["status"] in FINAL, stack=job_stack)["status"]
            == "succeeded"
        )
