"""Jobs: validate, record, enqueue; status, cancel and result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery
from pydantic import ValidationError

from gantry.settings import Settings
from gateway.errors import GantryError
from workers.inputs import input_file
from workers.kinds import JOB_KINDS
from workers.store import Job, JobStore


class JobService:
    """The gateway's side of the jobs API."""

    def __init__(self, *, settings: Settings, store: JobStore, celery: Celery) -> None:
        self.settings = settings
        self.store = store
        self.celery = celery

    def create(self, kind: str, params: dict[str, Any]) -> Job:
        """Validate, record and enqueue a job; 422 for a bad kind or bad parameters."""
        job_kind = JOB_KINDS.get(kind)
        if job_kind is None:
            raise GantryError(
                422, "unknown_kind", f"kind must be one of {', '.join(sorted(JOB_KINDS))}"
            )
        try:
            validated = job_kind.params_model().model_validate(params)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
                for e in exc.errors()
            )
            raise GantryError(422, "invalid_params", details) from exc
        for input_id in validated.input_ids():
            input_file(self.settings, input_id)  # 422 unknown_input before anything is queued
        job = self.store.create(kind, validated.model_dump(mode="json"))
        try:
            self.celery.send_task(job_kind.task, args=[job.id], queue=job_kind.queue)
        except Exception as exc:  # the broker is down: the job must not stay "queued" forever
            self.store.finish(
                job.id,
                "failed",
                error={"code": "broker_unavailable", "message": f"could not queue the job: {exc}"},
            )
            raise GantryError(
                503, "broker_unavailable", f"the job queue is unreachable: {exc}"
            ) from exc
        return job

    def require(self, job_id: str) -> Job:
        """The job; 404 ``unknown_job`` if there is none."""
        job = self.store.get(job_id)
        if job is None:
            raise GantryError(404, "unknown_job", f"no job {job_id}")
        return job

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: at once when queued, at its next tile or step when running."""
        self.require(job_id)
        job = self.store.request_cancel(job_id)
        assert job is not None
        return job

    def result_file(self, job_id: str) -> tuple[Path, str]:
        """(path, content type) of a succeeded job's result; 409 or 410 otherwise."""
        job = self.require(job_id)
        if job.status != "succeeded" or not job.result:
            raise GantryError(
                409, "result_not_ready", f"job {job_id} is {job.status}, it has no result file"
            )
        path = self.settings.results_dir / str(job.result["file"])
        if not path.exists():
            raise GantryError(410, "result_expired", f"the result of job {job_id} was deleted")
        return path, str(job.result.get("content_type", "application/octet-stream"))
