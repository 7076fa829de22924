"""The narrow interface a front door uses to submit and follow jobs.

The gateway (and `gantry jobs`) import this module and nothing else of ``workers``: the job
records, the kinds with their parameter models, the stored inputs, and the send of a task to
its queue. How jobs run (the Celery worker, the runner, the job functions) stays behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from gantry.core.errors import Conflict, Gone, InvalidInput, NotFound, Unavailable
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from workers.celery_app import create_celery
from workers.inputs import save_input
from workers.kinds import JOB_KINDS, JobKind
from workers.params import JobParams, Submission
from workers.store import FINAL, Job, JobStore, Status

__all__ = [
    "FINAL",
    "JOB_KINDS",
    "Job",
    "JobKind",
    "JobPage",
    "JobParams",
    "Jobs",
    "Status",
]


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing; ``next`` is the following page's number, or None."""

    jobs: list[Job]
    page: int
    next: int | None


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field: problem; field: problem``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in exc.errors()
    )


class Jobs:
    """Submit, follow, cancel and collect jobs; store their inputs."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: JobStore | None = None,
        catalog: ModelCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or JobStore(settings.effective_jobs_db_url)
        self.catalog = catalog or ModelCatalog(settings.model_repository)
        self._celery = create_celery(settings)

    def kind(self, name: str) -> JobKind:
        """The job kind ``name``; InvalidInput ``unknown_kind`` names the kinds there are."""
        if name not in JOB_KINDS:
            raise InvalidInput("unknown_kind", f"kind must be one of {', '.join(JOB_KINDS)}")
        return JOB_KINDS.get(name)

    def validate(self, kind: str, params: dict[str, Any] | JobParams) -> JobParams:
        """Parameters checked by the kind's model, then everything knowable before the job
        runs: inputs, zip directories, models, versions, tiles, sizes."""
        job_kind = self.kind(kind)
        try:
            data = params.model_dump() if isinstance(params, JobParams) else params
            validated = job_kind.params.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput("invalid_params", validation_message(exc)) from exc
        validated.check(Submission(self.settings, self.catalog))
        return validated

    def submit(self, kind: str, params: dict[str, Any] | JobParams) -> Job:
        """Validate, record and enqueue a job.

        Raises:
            InvalidInput: an unknown kind, bad parameters or an unknown input.
            Unavailable: the broker is unreachable; the job is recorded as failed.
        """
        validated = self.validate(kind, params)
        job_kind = JOB_KINDS.get(kind)
        job = self.store.create(kind, validated.model_dump(mode="json"))
        try:
            self._celery.send_task(job_kind.task, args=[job.id], queue=job_kind.queue)
        except Exception as exc:  # the broker is down: the job must not stay "queued" forever
            error = Unavailable("broker_unavailable", f"could not queue the job: {exc}")
            self.store.finish(job.id, "failed", error=error.as_dict())
            raise Unavailable("broker_unavailable", f"the job queue is unreachable: {exc}") from exc
        return job

    def get(self, job_id: str) -> Job:
        """The job; NotFound ``unknown_job`` if there is none."""
        job = self.store.get(job_id)
        if job is None:
            raise NotFound("unknown_job", f"no job {job_id}")
        return job

    def page(
        self, *, status: str | None = None, kind: str | None = None, page: int = 1, size: int = 50
    ) -> JobPage:
        """Jobs, newest first, ``size`` per page."""
        if kind is not None:
            self.kind(kind)
        rows = self.store.query(status=status, kind=kind, limit=size + 1, offset=(page - 1) * size)
        return JobPage(rows[:size], page, page + 1 if len(rows) > size else None)

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: at once when queued, at its next tile or step when running."""
        self.get(job_id)
        job = self.store.request_cancel(job_id)
        assert job is not None
        return job

    def result_file(self, job_id: str) -> tuple[Path, str]:
        """(path, content type) of a succeeded job's result.

        Raises:
            Conflict: ``result_not_ready``: the job has not succeeded (yet).
            Gone: ``result_expired``: the result was deleted after the retention period.
        """
        job = self.get(job_id)
        if job.status != "succeeded" or not job.result:
            raise Conflict(
                "result_not_ready", f"job {job_id} is {job.status}, it has no result file"
            )
        path = self.settings.results_dir / str(job.result["file"])
        if not path.exists():
            raise Gone("result_expired", f"the result of job {job_id} was deleted")
        return path, str(job.result.get("content_type", "application/octet-stream"))

    def save_input(self, filename: str, source: BinaryIO) -> tuple[str, str, int]:
        """Store an upload for later jobs, streamed to disk and checked (zip directories
        included); returns (input id, stored file name, size)."""
        return save_input(self.settings, filename, source, self.settings.max_job_input_bytes)
