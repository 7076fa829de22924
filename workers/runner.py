"""Running one job: claim, heartbeat, progress and cancel, final state with a reason.

Whatever happens, a claimed job ends succeeded, failed (with a code and a message) or
cancelled; a transient Triton outage requeues it for a retry with backoff.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gantry.core.errors import GantryError
from gantry.core.settings import Settings
from workers.store import Job, JobStore

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class JobCancelledError(Exception):
    """Raised at the next step of a job whose cancellation was requested."""


class TransientError(Exception):
    """A failure worth retrying (Triton unreachable); the job goes back to the queue."""


class JobContext:
    """What a job function gets: its parameters, progress reporting, the cancel check."""

    def __init__(self, job: Job, store: JobStore, settings: Settings) -> None:
        self.job = job
        self.store = store
        self.settings = settings
        self._last = 0.0

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, fraction: float, stage: str, *, force: bool = False) -> None:
        """Report progress (at most a few writes a second) and stop if cancelled."""
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        if self.store.progress(self.job.id, fraction, stage):
            raise JobCancelledError(stage)

    def check_cancelled(self) -> None:
        """Stop now if a cancel was requested (between steps)."""
        self.progress(self.job.progress, "checking", force=True)


@contextmanager
def heartbeat(store: JobStore, job_id: str, every_s: float) -> Iterator[None]:
    """Keep the job's heartbeat fresh during long steps (a Triton call on a 2K image)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            store.heartbeat(job_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def run_job(
    job_id: str,
    work: Callable[[JobContext], dict[str, Any]],
    *,
    store: JobStore,
    settings: Settings,
) -> str:
    """Claim and run one job; returns its final status, or "skipped" if not ours to run.

    Raises:
        TransientError: after requeueing the job, so the task can retry with backoff.
    """
    job = store.claim(job_id, WORKER_ID, settings.job_heartbeat_timeout_s)
    if job is None:
        return "skipped"  # already final, cancelled, or alive on another worker
    if job.attempts > settings.job_max_attempts:
        store.finish(
            job_id,
            "failed",
            error={
                "code": "too_many_attempts",
                "message": f"the job was started {job.attempts - 1} times without finishing",
            },
        )
        return "failed"
    context = JobContext(job, store, settings)
    from celery.exceptions import SoftTimeLimitExceeded

    with heartbeat(store, job_id, max(settings.job_heartbeat_timeout_s / 4, 0.5)):
        try:
            result = work(context)
        except JobCancelledError:
            store.finish(job_id, "cancelled", stage="cancelled")
            return "cancelled"
        except GantryError as error:
            if error.transient:
                waiting = "Triton" if error.code == "triton_unavailable" else error.code
                store.requeue(job_id, f"waiting for {waiting}")
                raise TransientError(error.message) from error
            store.finish(job_id, "failed", error=error.as_dict())
            return "failed"
        except SoftTimeLimitExceeded:
            store.finish(
                job_id,
                "failed",
                error={
                    "code": "time_limit",
                    "message": f"the job ran over {settings.job_soft_time_limit_s} s",
                },
            )
            return "failed"
        except Exception as exc:  # any other bug still ends the job with a reason
            store.finish(
                job_id,
                "failed",
                error={"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"},
            )
            return "failed"
    store.finish(job_id, "succeeded", result=result, stage="done")
    return "succeeded"
