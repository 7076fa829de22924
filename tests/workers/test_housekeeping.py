"""Reaping jobs of lost workers, resending lost retries, result retention (no processes)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import update

from gantry.core.settings import Settings
from workers.store import JobStore, jobs
from workers.tasks import purge_expired_results, reap_stale_jobs


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(state_dir=tmp_path, job_heartbeat_timeout_s=5, job_max_attempts=2, **kw)  # type: ignore[arg-type]


def _age(store: JobStore, job_id: str, seconds: float, column: str) -> None:
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values({column: past}))


def test_a_job_whose_worker_died_is_requeued_then_failed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = JobStore(settings.effective_jobs_db_url)
    sent: list[tuple[str, str]] = []
    job = store.create("superres_batch", {"inputs": []})
    assert store.claim(job.id, "w1", 5) is not None
    assert reap_stale_jobs(store, settings, lambda k, i: sent.append((k, i))) == []  # alive
    _age(store, job.id, 60, "heartbeat_at")
    assert reap_stale_jobs(store, settings, lambda k, i: sent.append((k, i))) == [job.id]
    assert sent == [("superres_batch", job.id)]
    assert store.get(job.id).status == "queued"  # type: ignore[union-attr]
    assert store.claim(job.id, "w2", 5) is not None  # the second worker takes it
    _age(store, job.id, 60, "heartbeat_at")
    reap_stale_jobs(store, settings, lambda k, i: sent.append((k, i)))
    final = store.get(job.id)
    assert final is not None and final.status == "failed"
    assert final.error == {
        "code": "worker_lost",
        "message": "the worker running this job stopped 2 times",
    }


def test_a_lost_retry_message_is_sent_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = JobStore(settings.effective_jobs_db_url)
    job = store.create("synthesis", {})
    store.claim(job.id, "w1", 5)
    store.requeue(job.id, "waiting for Triton")
    sent: list[tuple[str, str]] = []
    assert reap_stale_jobs(store, settings, lambda k, i: sent.append((k, i))) == []
    _age(store, job.id, 600, "updated_at")
    assert reap_stale_jobs(store, settings, lambda k, i: sent.append((k, i))) == [job.id]
    assert sent == [("synthesis", job.id)]


def test_duplicate_delivery_does_nothing(tmp_path: Path) -> None:
    store = JobStore(_settings(tmp_path).effective_jobs_db_url)
    job = store.create("superres_batch", {})
    assert store.claim(job.id, "w1", 5) is not None
    assert store.claim(job.id, "w2", 5) is None  # running, heartbeat fresh
    store.finish(job.id, "succeeded", result={"file": "x"})
    assert store.claim(job.id, "w3", 5) is None  # final
    store.finish(job.id, "failed", error={"code": "late", "message": "too late"})
    assert store.get(job.id).status == "succeeded"  # type: ignore[union-attr]


def test_results_are_deleted_after_the_retention(tmp_path: Path) -> None:
    settings = _settings(tmp_path, result_retention_hours=1.0)
    store = JobStore(settings.effective_jobs_db_url)
    settings.results_dir.mkdir(parents=True)
    old, new = store.create("synthesis", {}), store.create("synthesis", {})
    for job in (old, new):
        (settings.results_dir / f"{job.id}.png").write_bytes(b"png")
        store.claim(job.id, "w", 5)
        store.finish(job.id, "succeeded", result={"file": f"{job.id}.png"})
    _age(store, old.id, 2 * 3600, "updated_at")
    assert purge_expired_results(store, settings) == 1
    assert not (settings.results_dir / f"{old.id}.png").exists()
    assert (settings.results_dir / f"{new.id}.png").exists()
