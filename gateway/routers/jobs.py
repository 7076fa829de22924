"""POST/GET /v1/jobs, GET/DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result, POST /v1/inputs."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from gantry.core.errors import InvalidInput
from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import strict_form
from gateway.responses import binary_content
from gateway.schemas import JobAccepted, JobInfo, JobList, JobStatus, StoredInput
from workers.interface import Job

router = APIRouter(prefix="/v1", tags=["jobs"])

# The body schema is the union of every kind's parameters, discriminated by `kind`
# (gateway.openapi builds it from the kinds table). The handler validates with the kind's
# own model so a bad kind or bad parameters get their own error codes.
JOB_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}},
    }
}


def job_info(job: Job) -> JobInfo:
    return JobInfo.model_validate(job.public())


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobAccepted,
    responses=errors(400, 404, 422, 503),
    openapi_extra=JOB_REQUEST_BODY,
)
async def create_job(state: StateDep, request: Request) -> JSONResponse:
    """Queue a job; 202 with its id."""
    try:
        body: Any = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidInput("invalid_request", f"the body is not JSON: {exc}") from exc
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("kind"), str)
        or not set(body) <= {"kind", "params"}
    ):
        raise InvalidInput("invalid_request", 'the body must be {"kind": "...", "params": {...}}')
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise InvalidInput("invalid_params", "params must be an object")
    job = state.jobs.submit(body["kind"], params)
    accepted = JobAccepted(id=job.id, kind=job.kind, status="queued")
    return JSONResponse(status_code=202, content=accepted.model_dump())


@router.get("/jobs", responses=errors(422))
async def list_jobs(
    state: StateDep,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(description="a job kind")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200, description="jobs per page")] = 50,
) -> JobList:
    """Jobs, newest first, optionally filtered by status and kind."""
    found = state.jobs.page(status=status, kind=kind, page=page, size=size)
    return JobList(jobs=[job_info(j) for j in found.jobs], page=found.page, next=found.next)


@router.get("/jobs/{job_id}", responses=errors(404))
async def get_job(state: StateDep, job_id: str) -> JobInfo:
    """Status, progress (0..1), stage, result or error."""
    return job_info(state.jobs.get(job_id))


@router.delete("/jobs/{job_id}", responses=errors(404))
async def cancel_job(state: StateDep, job_id: str) -> JobInfo:
    """Cancel; queued jobs end at once, running ones at their next tile or step."""
    return job_info(state.jobs.cancel(job_id))


@router.get(
    "/jobs/{job_id}/result",
    response_class=FileResponse,
    responses={
        200: {
            "content": binary_content("application/zip", "image/png"),
            "description": "the result file: a zip of images, or one image",
        },
        **errors(404, 409, 410),
    },
)
async def job_result(state: StateDep, job_id: str) -> FileResponse:
    """The result file of a succeeded job."""
    path, content_type = state.jobs.result_file(job_id)
    return FileResponse(path, media_type=content_type, filename=path.name)


@router.post(
    "/inputs",
    status_code=201,
    responses=errors(400, 413, 422),
    dependencies=[Depends(strict_form)],
)
async def upload_input(
    state: StateDep, file: Annotated[UploadFile, File(description="an image or a zip of images")]
) -> StoredInput:
    """Store a file for later jobs (streamed to disk, zips checked); returns its input id."""
    input_id, name, size = await asyncio.to_thread(
        state.jobs.save_input, file.filename or "input", file.file
    )
    return StoredInput(id=input_id, filename=name, size=size)
