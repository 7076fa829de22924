"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import StateDep
from gateway.errors import error_response, errors
from gateway.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """200 while the process lives."""
    return Health()


@router.get("/readyz", response_model=Ready, responses=errors(503))
async def readyz(state: StateDep) -> Ready | JSONResponse:
    """200 when Triton and every default model are ready, else 503 saying what is missing."""
    triton = state.pipelines.triton
    if not await triton.server_ready():
        return error_response(503, "not_ready", f"Triton at {triton.url} is not ready")
    defaults = state.pipelines.catalog.defaults()
    if not defaults:
        return error_response(503, "not_ready", "no model is built: run `gantry models build`")
    missing = [b.name for b in defaults if not await triton.model_ready(b.name, b.version)]
    if missing:
        return error_response(503, "not_ready", f"models not ready: {', '.join(missing)}")
    return Ready(models=[b.name for b in defaults])


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> PlainTextResponse:
    """Prometheus text format."""
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
