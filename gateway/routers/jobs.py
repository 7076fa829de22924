"""POST /v1/jobs, GET/DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result, POST /v1/inputs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from gateway.deps import StateDep
from gateway.errors import GantryError
from workers.inputs import save_input

router = APIRouter(prefix="/v1", tags=["jobs"])


class JobRequest(BaseModel):
    """A job to run: its kind and its parameters."""

    kind: str = Field(examples=["superres_batch"])
    params: dict[str, Any] = Field(default_factory=dict)


@router.post("/jobs", status_code=202)
async def create_job(state: StateDep, request: JobRequest) -> JSONResponse:
    """Queue a job; 202 with its id."""
    job = state.jobs.create(request.kind, request.params)
    return JSONResponse(
        status_code=202, content={"id": job.id, "kind": job.kind, "status": job.status}
    )


@router.get("/jobs/{job_id}")
async def get_job(state: StateDep, job_id: str) -> dict[str, Any]:
    """Status, progress (0..1), stage, result or error."""
    return state.jobs.require(job_id).public()


@router.delete("/jobs/{job_id}")
async def cancel_job(state: StateDep, job_id: str) -> dict[str, Any]:
    """Cancel; queued jobs end at once, running ones at their next tile or step."""
    return state.jobs.cancel(job_id).public()


@router.get("/jobs/{job_id}/result")
async def job_result(state: StateDep, job_id: str) -> FileResponse:
    """The result file of a succeeded job."""
    path, content_type = state.jobs.result_file(job_id)
    return FileResponse(path, media_type=content_type, filename=path.name)


@router.post("/inputs", status_code=201)
async def upload_input(
    state: StateDep, file: Annotated[UploadFile, File(description="an image or a zip of images")]
) -> dict[str, Any]:
    """Store a file for later jobs; returns its input id."""
    limit = state.settings.max_job_input_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise GantryError(413, "upload_too_large", f"inputs are limited to {limit} bytes")
    if not data:
        raise GantryError(422, "empty_upload", "the file is empty")
    input_id, name = save_input(state.settings, file.filename or "input", data)
    return {"id": input_id, "filename": name, "size": len(data)}
