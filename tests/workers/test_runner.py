"""Every way a job can end, through workers.runner.run_job (no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from gantry.core.errors import InvalidInput, Unavailable
from gantry.core.settings import Settings
from workers.runner import JobContext, TransientError, run_job
from workers.store import JobStore


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[JobStore, Settings]:
    settings = Settings(state_dir=tmp_path, job_heartbeat_timeout_s=5)
    return JobStore(settings.effective_jobs_db_url), settings


def _run(setup: tuple[JobStore, Settings], work: Any) -> tuple[str, dict[str, Any]]:
    store, settings = setup
    job = store.create("synthesis", {})
    status = run_job(job.id, work, store=store, settings=settings)
    final = store.get(job.id)
    assert final is not None
    return status, final.public()


def _raise(exc: BaseException) -> Any:
    def work(_: JobContext) -> dict[str, Any]:
        raise exc

    return work


def test_success_records_the_result(setup: tuple[JobStore, Settings]) -> None:
    def work(ctx: JobContext) -> dict[str, Any]:
        ctx.progress(0.5, "half", force=True)
        return {"file": "x.png"}

    status, job = _run(setup, work)
    assert status == "succeeded" and job["result"] == {"file": "x.png"} and job["progress"] == 1.0


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (SoftTimeLimitExceeded(), "time_limit"),
        (InvalidInput("invalid_image", "x.png is corrupt"), "invalid_image"),
        (ZeroDivisionError("bug"), "internal_error"),
    ],
)
def test_failures_end_with_a_reason(
    setup: tuple[JobStore, Settings], exc: BaseException, code: str
) -> None:
    status, job = _run(setup, _raise(exc))
    assert status == "failed" and job["status"] == "failed" and job["error"]["code"] == code
    assert job["error"]["message"]


def test_cancel_requested_mid_job(setup: tuple[JobStore, Settings]) -> None:
    store, _ = setup

    def work(ctx: JobContext) -> dict[str, Any]:
        store.request_cancel(ctx.job.id)
        ctx.progress(0.3, "tile 3/10", force=True)  # the next step notices
        raise AssertionError("not reached")

    status, job = _run(setup, work)
    assert status == "cancelled" and job["status"] == "cancelled"


def test_triton_outage_requeues_for_a_retry(setup: tuple[JobStore, Settings]) -> None:
    store, settings = setup
    job = store.create("synthesis", {})
    with pytest.raises(TransientError):
        run_job(
            job.id,
            _raise(Unavailable("triton_unavailable", "down")),
            store=store,
            settings=settings,
        )
    again = store.get(job.id)
    assert again is not None and again.status == "queued" and again.stage == "waiting for Triton"
    assert run_job(job.id, lambda ctx: {"ok": True}, store=store, settings=settings) == "succeeded"
