"""``kind: "train"`` on real Celery workers: progress by step, cancel at a step, a killed
worker's run resumes from its checkpoint, and a published version served by the real Triton."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gantry.core.settings import Settings
from gantry.serving.triton import TritonControl
from tests.conftest import copy_repository, stack_settings
from tests.paths import DATA
from tests.training import SMALL_RUN
from tests.workers.conftest import FINAL, JobStack, api, make_stack, wait_for

SMALL = {**SMALL_RUN, "sample_every": 8}
LABEL_MAP = DATA / "train" / "cmp_facades" / "val" / "label"


def _submit(client: Any, steps: int, publish: bool = False) -> str:
    body = {
        "kind": "train",
        "params": {
            "config": "pix2pix-facades",
            "overrides": {**SMALL, "steps": steps},
            "publish": publish,
        },
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _at_step(step: int, steps: int) -> Any:
    return lambda j: j["status"] == "running" and j["progress"] >= 0.9 * step / steps


def test_a_bad_config_is_refused_at_submission(job_stack: JobStack) -> None:
    with api(job_stack) as client:
        for params, code in (
            ({"config": "pix2pix-facade"}, "unknown_config"),
            ({"config": "pix2pix-facades", "overrides": {"lambda_ll": 1}}, "invalid_config"),
            ({"config": "/etc/passwd.yaml"}, "unknown_config"),
        ):
            response = client.post("/v1/jobs", json={"kind": "train", "params": params})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == code


def test_a_killed_worker_s_run_resumes_from_its_checkpoint(job_stack: JobStack) -> None:
    first = job_stack.start_worker()
    steps = 48
    with api(job_stack) as client:
        job_id = _submit(client, steps)
        running = wait_for(client, job_id, _at_step(10, steps), timeout_s=240, stack=job_stack)
        assert running["stage"].startswith("step ")
        job_stack.kill_worker(first)  # SIGKILL: no cleanup, no ack
        job_stack.start_worker()
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, 300, job_stack)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        result = job["result"]
        # Resumed from a checkpoint written before the kill, not from zero.
        assert result["resumed_from"] is not None and 8 <= result["resumed_from"] < steps
        assert (result["step"], result["stopped"]) == (steps, "steps")
        assert set(result["metrics"]) == {"val_l1", "val_l1_mean_photo"}
        assert result["metrics_at_init"]["val_l1"] > 0
        download = client.get(f"/v1/jobs/{job_id}/result")
        assert download.status_code == 200
        with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
            names = set(archive.namelist())
        assert {"generator.pth", "metrics.csv", "curves.png", "result.json"} <= names
        assert any(n.startswith("samples/") for n in names)
        assert any(n.startswith("tensorboard/events") for n in names)


def test_cancel_stops_a_training_run_at_a_step(job_stack: JobStack) -> None:
    job_stack.start_worker()
    steps = 2000
    with api(job_stack) as client:
        job_id = _submit(client, steps)
        wait_for(client, job_id, _at_step(3, steps), timeout_s=240, stack=job_stack)
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, stack=job_stack)
        assert job["status"] == "cancelled"
        assert job["progress"] < 0.9


@pytest.fixture()
def private_stack(model_repository: Path, tmp_path: Path) -> Iterator[JobStack]:
    """A Triton of its own on a copy of the repository (publishing adds a version)."""
    from deploy.triton.launcher import TritonServer

    repository = copy_repository(model_repository, tmp_path / "repository")
    settings: Settings = stack_settings(repository, tmp_path / "triton-state")
    server = TritonServer(
        repository=repository,
        state_dir=settings.state_dir,
        http_port=settings.triton_http_port,
        grpc_port=settings.triton_grpc_port,
        metrics_port=settings.triton_metrics_port,
    )
    with server.running(timeout_s=300):
        stack = make_stack(settings, tmp_path / "state")
        yield stack
        stack.stop()


def test_publish_exports_serves_and_translates_through_triton(private_stack: JobStack) -> None:
    stack = private_stack
    stack.start_worker()
    with api(stack) as client:
        job_id = _submit(client, 4, publish=True)
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, 300, stack)
        assert job["status"] == "succeeded", job
        published = job["result"]["published"]
        assert published["model"] == "pix2pix-facades"
        assert published["version"] == 2 and published["loaded"] is True
        assert published["parity_max_abs_err"] < 1e-3
        index = TritonControl(stack.settings.triton_http_url).index()
        states = {e["version"]: e["state"] for e in index if e["name"] == "pix2pix-facades"}
        assert states == {"1": "READY", "2": "READY"}
        built = client.get("/v1/models").json()["models"]
        card = {m["name"]: m for m in built}["pix2pix-facades"]
        assert card["versions"][1]["build"]["training_run"] == f"job-{job_id}"

        # The new version translates a held-aside label map through Triton.
        label = sorted(LABEL_MAP.glob("*.png"))[0].read_bytes()
        upload = client.post("/v1/inputs", files={"file": ("facade.png", label)}).json()["id"]
        body = {
            "kind": "superres_batch",
            "params": {"inputs": [upload], "model": "pix2pix-facades", "version": 2, "tile": 0},
        }
        translate = client.post("/v1/jobs", json=body).json()["id"]
        done = wait_for(client, translate, lambda j: j["status"] in FINAL, 120, stack)
        assert done["status"] == "succeeded", done
        with zipfile.ZipFile(io.BytesIO(client.get(f"/v1/jobs/{translate}/result").content)) as z:
            from PIL import Image

            (name,) = z.namelist()
            assert Image.open(io.BytesIO(z.read(name))).size == (256, 256)
