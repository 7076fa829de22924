"""Celery tasks (named, idempotent, late-acked) and the worker's housekeeping threads.

Start a worker with ``gantry worker`` (or ``celery -A workers.tasks worker -Q inference``).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from celery import Task
from celery.signals import worker_ready, worker_shutting_down

from gantry.core.settings import Settings, get_settings
from workers.celery_app import create_celery
from workers.inputs import INPUT_ID
from workers.kinds import JOB_KINDS
from workers.runner import TransientError, run_job
from workers.store import JobStore

log = logging.getLogger(__name__)
app = create_celery()


@lru_cache(maxsize=1)
def store() -> JobStore:
    """This process's job store."""
    return JobStore(get_settings().effective_jobs_db_url)


def _execute(task: Task[Any, Any], kind: str, job_id: str) -> str:
    try:
        work = JOB_KINDS.get(kind).function()
        return run_job(job_id, work, store=store(), settings=get_settings())
    except TransientError as exc:
        # Triton is unreachable: retry with exponential backoff (2, 4, 8, ... s, capped).
        countdown = min(2 ** (task.request.retries + 1), 60)
        raise task.retry(exc=exc, countdown=countdown, max_retries=8) from exc


def _register_task(kind: str) -> Task[Any, Any]:
    """One named, late-acked task per job kind; it takes the job id."""

    def run(self: Task[Any, Any], job_id: str) -> str:
        return _execute(self, kind, job_id)

    run.__doc__ = f"Run a ``{kind}`` job."
    task: Task[Any, Any] = app.task(
        name=JOB_KINDS.get(kind).task, bind=True, acks_late=True, reject_on_worker_lost=True
    )(run)
    return task


TASKS: dict[str, Task[Any, Any]] = {kind: _register_task(kind) for kind in JOB_KINDS}


def enqueue(kind: str, job_id: str) -> None:
    """Send the task of a job to its queue."""
    job_kind = JOB_KINDS.get(kind)
    app.send_task(job_kind.task, args=[job_id], queue=job_kind.queue)


# The longest retry countdown (see _execute) plus slack: a requeued job waiting longer than
# this has lost its retry message.
RETRY_GRACE_S = 90.0


def reap_stale_jobs(
    job_store: JobStore, settings: Settings, send: Callable[[str, str], None] = enqueue
) -> list[str]:
    """Requeue running jobs whose worker died (no heartbeat), or fail them after N tries.

    With the embedded SQLite broker a message taken by a killed worker is gone; with Redis it
    comes back after the visibility timeout. Either way this sends the job again, and the
    claim in the job store makes a second delivery of the same job a no-op. Jobs waiting for
    a retry whose delayed message died with its worker are sent again too.
    """
    requeued = []
    for job in job_store.stale_running(settings.job_heartbeat_timeout_s):
        if job.attempts >= settings.job_max_attempts:
            job_store.finish(
                job.id,
                "failed",
                error={
                    "code": "worker_lost",
                    "message": f"the worker running this job stopped {job.attempts} times",
                },
            )
            continue
        job_store.requeue(job.id, "requeued after worker loss")
        send(job.kind, job.id)
        requeued.append(job.id)
    for job in job_store.stale_requeued(settings.job_heartbeat_timeout_s + RETRY_GRACE_S):
        job_store.touch(job.id)
        send(job.kind, job.id)
        requeued.append(job.id)
    return requeued


def purge_expired_results(job_store: JobStore, settings: Settings) -> int:
    """Delete result files (and inputs) of jobs finished more than the retention ago."""
    cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(
        hours=settings.result_retention_hours
    )
    removed = 0
    for job in job_store.finished_before(cutoff):
        name = (job.result or {}).get("file")
        if name and (settings.results_dir / name).exists():
            (settings.results_dir / name).unlink()
            removed += 1
        for input_id in referenced_inputs(job.params):
            shutil.rmtree(settings.inputs_dir / input_id, ignore_errors=True)
    return removed


def referenced_inputs(params: object) -> set[str]:
    """Every input id anywhere in a job's parameters (whatever its kind, or its age)."""
    if isinstance(params, str):
        return {params} if INPUT_ID.fullmatch(params) else set()
    if isinstance(params, dict):
        params = list(params.values())
    if isinstance(params, list):
        return set().union(*(referenced_inputs(v) for v in params)) if params else set()
    return set()


def purge_unreferenced_inputs(job_store: JobStore, settings: Settings) -> int:
    """Delete uploads older than the input retention that no queued or running job reads.

    An upload nobody submits a job for would otherwise stay forever.
    """
    if not settings.inputs_dir.is_dir():
        return 0
    cutoff = time.time() - settings.input_retention_hours * 3600
    in_use = set().union(*(referenced_inputs(j.params) for j in job_store.unfinished()))
    removed = 0
    for folder in settings.inputs_dir.iterdir():
        if folder.name in in_use or not INPUT_ID.fullmatch(folder.name):
            continue
        if folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


_stop = threading.Event()


def _housekeeping() -> None:
    interval = max(get_settings().job_heartbeat_timeout_s / 2, 1.0)
    while not _stop.wait(interval):
        try:
            reaped = reap_stale_jobs(store(), get_settings())
            if reaped:
                log.warning("requeued jobs of lost workers: %s", reaped)
            purge_expired_results(store(), get_settings())
            purge_unreferenced_inputs(store(), get_settings())
        except Exception:  # housekeeping must never take the worker down
            log.exception("housekeeping failed")


@worker_ready.connect
def _start_housekeeping(**_: object) -> None:
    threading.Thread(target=_housekeeping, name="gantry-housekeeping", daemon=True).start()


@worker_shutting_down.connect
def _stop_housekeeping(**_: object) -> None:
    _stop.set()
