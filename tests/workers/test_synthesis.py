"""2K pix2pixHD synthesis jobs on real worker processes."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

from tests.paths import DATA
from tests.workers.conftest import FINAL, JobStack, api, wait_for

LABEL = DATA / "train" / "cmp_facades" / "val" / "label"


def _upload(client, path) -> str:  # type: ignore[no-untyped-def]
    return str(
        client.post("/v1/inputs", files={"file": (path.name, path.read_bytes())}).json()["id"]
    )


def test_label_map_to_2k_image(job_stack: JobStack) -> None:
    job_stack.start_worker()
    with api(job_stack) as client:
        label_id = _upload(client, sorted(LABEL.glob("*.png"))[0])
        created = client.post(
            "/v1/jobs",
            json={
                "kind": "synthesis",
                "params": {"label_map": label_id, "features": {"2": [0.5, -0.5, 0.1]}},
            },
        )
        assert created.status_code == 202, created.text
        job = wait_for(
            client,
            created.json()["id"],
            lambda j: j["status"] in FINAL,
            timeout_s=300,
            stack=job_stack,
        )
        assert job["status"] == "succeeded", job
        assert job["result"]["width"] == 2048 and job["result"]["height"] == 1024
        assert job["result"]["worker_peak_rss_mib"] > 0
        image = Image.open(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/result").content))
        assert image.size == (2048, 1024) and image.mode == "RGB"
        pixels = np.asarray(image, np.float32)
        assert pixels.std() > 5  # a picture, not a flat fill


def test_cancel_a_running_2k_synthesis(job_stack: JobStack) -> None:
    job_stack.start_worker()
    with api(job_stack) as client:
        label_id = _upload(client, sorted(LABEL.glob("*.png"))[1])
        job_id = client.post(
            "/v1/jobs",
            json={
                "kind": "synthesis",
                "params": {"label_map": label_id, "width": 4096, "height": 2048},
            },
        ).json()["id"]
        wait_for(client, job_id, lambda j: j["status"] == "running", stack=job_stack)
        assert client.delete(f"/v1/jobs/{job_id}").json()["status"] in ("running", "cancelled")
        started = time.monotonic()
        job = wait_for(
            client, job_id, lambda j: j["status"] in FINAL, timeout_s=120, stack=job_stack
        )
        assert job["status"] == "cancelled", job
        assert job["progress"] < 1.0
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409
        print(f"cancelled {time.monotonic() - started:.1f} s after the request, at {job['stage']}")


def test_corrupt_label_map_fails_with_a_reason(job_stack: JobStack) -> None:
    job_stack.start_worker()
    with api(job_stack) as client:
        path = sorted(LABEL.glob("*.png"))[0]
        broken = client.post(
            "/v1/inputs", files={"file": ("broken.png", path.read_bytes()[:200])}
        ).json()["id"]
        rgb = io.BytesIO()
        Image.open(path).convert("RGB").save(rgb, format="PNG")
        coloured = client.post("/v1/inputs", files={"file": ("rgb.png", rgb.getvalue())}).json()[
            "id"
        ]
        for input_id, code in ((broken, "invalid_image"), (coloured, "invalid_label_map")):
            job_id = client.post(
                "/v1/jobs",
                json={
                    "kind": "synthesis",
                    "params": {"label_map": input_id, "width": 256, "height": 128},
                },
            ).json()["id"]
            job = wait_for(client, job_id, lambda j: j["status"] in FINAL, stack=job_stack)
            assert job["status"] == "failed" and job["error"]["code"] == code, job
        # A size the model cannot make is knowable at submission: refused there, not queued.
        bad_size = client.post(
            "/v1/jobs",
            json={
                "kind": "synthesis",
                "params": {"label_map": broken, "width": 100, "height": 100},
            },
        )
        assert bad_size.status_code == 422 and bad_size.json()["error"]["code"] == "invalid_size"
