"""Batch super-resolution jobs on real worker processes (embedded broker)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from tests.paths import DATA, REAL_INPUTS, SET5
from tests.workers.conftest import FINAL, JobStack, api, wait_for

FAST = "realesr-animevideov3-x4"
NAMES = ("baby", "bird", "woman")


def _zip_of_set5() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in NAMES:
            archive.write(SET5 / "LR_bicubic" / "X4" / f"{name}x4.png", f"set5/{name}.png")
        archive.writestr("notes.txt", "not an image: skipped")
    return buffer.getvalue()


def _upload(client, data: bytes, name: str) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/v1/inputs", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_zip_batch_runs_through_the_superres_tiling_path(job_stack: JobStack) -> None:
    job_stack.start_worker()
    with api(job_stack) as client:
        input_id = _upload(client, _zip_of_set5(), "set5.zip")
        created = client.post(
            "/v1/jobs",
            json={"kind": "superres_batch", "params": {"inputs": [input_id], "model": FAST}},
        )
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "queued"
        job = wait_for(
            client, created.json()["id"], lambda j: j["status"] in FINAL, stack=job_stack
        )
        assert job["status"] == "succeeded", job
        assert job["progress"] == 1.0 and job["attempts"] == 1
        result = client.get(f"/v1/jobs/{job['id']}/result")
        assert result.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
            # Output names keep the input's path inside the zip.
            assert sorted(archive.namelist()) == sorted(f"set5/{n}_x4.png" for n in NAMES)
            baby = Image.open(io.BytesIO(archive.read("set5/baby_x4.png")))
        assert baby.size == (512, 512)
        # The same bytes as the synchronous endpoint: one tiling path for both.
        sync = client.post(
            "/v1/superres",
            files={"image": ("b.png", (SET5 / "LR_bicubic" / "X4" / "babyx4.png").read_bytes())},
            data={"model": FAST},
        )
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(sync.content))), np.asarray(baby))


def test_corrupt_input_fails_with_a_reason(job_stack: JobStack) -> None:
    job_stack.start_worker()
    with api(job_stack) as client:
        good = _upload(client, (REAL_INPUTS / "0014.jpg").read_bytes(), "good.jpg")
        data = (REAL_INPUTS / "0030.jpg").read_bytes()
        bad = _upload(client, data[: len(data) // 3], "broken.jpg")
        created = client.post(
            "/v1/jobs",
            json={"kind": "superres_batch", "params": {"inputs": [good, bad], "model": FAST}},
        ).json()
        job = wait_for(client, created["id"], lambda j: j["status"] in FINAL, stack=job_stack)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "invalid_image" and "broken.jpg" in job["error"]["message"]
        assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 409


def test_bad_job_requests_are_refused_before_queueing(job_stack: JobStack) -> None:
    with api(job_stack) as client:

        def code(body: dict) -> tuple[int, str]:  # type: ignore[type-arg]
            response = client.post("/v1/jobs", json=body)
            return response.status_code, response.json()["error"]["code"]

        assert code({"kind": "training", "params": {}}) == (422, "unknown_kind")
        assert code({"kind": "superres_batch", "params": {}}) == (422, "invalid_params")
        assert code({"kind": "superres_batch", "params": {"inputs": ["nope"]}}) == (
            422,
            "unknown_input",
        )
        missing = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_job"

        # Everything checkable at submission is checked there, before anything is queued.
        bird = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
        real = _upload(client, bird, "bird.png")

        def batch(**params: object) -> tuple[int, str]:
            return code({"kind": "superres_batch", "params": {"inputs": [real], **params}})

        assert batch(tile=-1) == (422, "invalid_tile")
        assert batch(model="no-such-model") == (422, "unknown_model")
        assert batch(model=FAST, version=9) == (404, "unknown_version")
        assert batch(typo=1) == (422, "invalid_params")
        many = {"kind": "superres_batch", "params": {"inputs": [real] * 40_000}}
        assert code(many) == (422, "too_many_images")
        label = _upload(client, bird, "label.png")
        synthesis = {"kind": "synthesis", "params": {"label_map": label, "width": 100}}
        assert code(synthesis) == (422, "invalid_size")
        assert client.get("/v1/jobs").json()["jobs"] == []  # none of them was recorded


def test_queued_job_is_cancelled_at_once_and_never_runs(job_stack: JobStack) -> None:
    with api(job_stack) as client:
        input_id = _upload(client, _zip_of_set5(), "set5.zip")
        job_id = client.post(
            "/v1/jobs",
            json={"kind": "superres_batch", "params": {"inputs": [input_id], "model": FAST}},
        ).json()["id"]
        cancelled = client.delete(f"/v1/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        job_stack.start_worker()  # the message is still delivered; the worker must skip it
        import time

        time.sleep(6)
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "cancelled" and job["attempts"] == 0
        assert "skipped" in job_stack.worker_log() or "succeeded" not in job_stack.worker_log()


def test_job_records_survive_a_gateway_restart(job_stack: JobStack) -> None:
    with api(job_stack) as first:
        input_id = _upload(first, _zip_of_set5(), "set5.zip")
        job_id = first.post(
            "/v1/jobs",
            json={"kind": "superres_batch", "params": {"inputs": [input_id], "model": FAST}},
        ).json()["id"]
    with api(job_stack) as second:
        assert second.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        job_stack.start_worker()
        job = wait_for(second, job_id, lambda j: j["status"] in FINAL, stack=job_stack)
        assert job["status"] == "succeeded"


def test_jobs_are_listed_newest_first_by_status_and_kind(job_stack: JobStack) -> None:
    with api(job_stack) as client:
        bird = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
        input_id = _upload(client, bird, "bird.png")
        body = {"kind": "superres_batch", "params": {"inputs": [input_id], "model": FAST}}
        ids = [client.post("/v1/jobs", json=body).json()["id"] for _ in range(3)]
        client.delete(f"/v1/jobs/{ids[0]}")  # queued: cancelled at once
        listed = client.get("/v1/jobs").json()
        assert [j["id"] for j in listed["jobs"]] == ids[::-1] and listed["next"] is None
        queued = client.get("/v1/jobs", params={"status": "queued"}).json()["jobs"]
        assert {j["id"] for j in queued} == set(ids[1:])
        first = client.get("/v1/jobs", params={"size": 2}).json()
        assert len(first["jobs"]) == 2 and first["next"] == 2
        second = client.get("/v1/jobs", params={"size": 2, "page": 2}).json()
        assert [j["id"] for j in second["jobs"]] == [ids[0]] and second["next"] is None
        assert client.get("/v1/jobs", params={"kind": "synthesis"}).json()["jobs"] == []
        bad = client.get("/v1/jobs", params={"kind": "training"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_kind"
        bad = client.get("/v1/jobs", params={"status": "lost"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_same_names_in_folders_give_unique_outputs_that_keep_the_path(
    job_stack: JobStack,
) -> None:
    job_stack.start_worker()
    bird = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/same.png", bird)
        archive.writestr("b/same.png", bird)
    with api(job_stack) as client:
        input_id = _upload(client, buffer.getvalue(), "two.zip")
        body = {"kind": "superres_batch", "params": {"inputs": [input_id], "model": FAST}}
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, stack=job_stack)
        assert job["status"] == "succeeded", job
        assert [(i["input"], i["output"]) for i in job["result"]["images"]] == [
            ("a/same.png", "a/same_x4.png"),
            ("b/same.png", "b/same_x4.png"),
        ]
        result = client.get(f"/v1/jobs/{job_id}/result")
        with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
            assert archive.namelist() == ["a/same_x4.png", "b/same_x4.png"]


def test_a_deblur_model_runs_through_its_own_pipeline_with_the_same_bytes(
    job_stack: JobStack,
) -> None:
    """The batch job takes deblur models too: the same tiling path as POST /v1/deblur."""
    job_stack.start_worker()
    photo = (DATA / "train" / "natural_photos_sr" / "bsd68_color" / "108070.png").read_bytes()
    with api(job_stack) as client:
        input_id = _upload(client, photo, "photo.png")
        body = {
            "kind": "superres_batch",
            "params": {"inputs": [input_id], "model": "deblurgan-photos"},
        }
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        job = wait_for(client, job_id, lambda j: j["status"] in FINAL, stack=job_stack)
        assert job["status"] == "succeeded", job
        assert [i["output"] for i in job["result"]["images"]] == ["photo_x1.png"]
        result = client.get(f"/v1/jobs/{job_id}/result")
        with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
            batch = np.asarray(Image.open(io.BytesIO(archive.read("photo_x1.png"))))
        sync = client.post(
            "/v1/deblur",
            files={"image": ("photo.png", photo)},
            data={"model": "deblurgan-photos"},
        )
        assert sync.status_code == 200, sync.text
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(sync.content))), batch)
