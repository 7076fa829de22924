"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.deps import StateDep
from gateway.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process lives."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """200 when Triton and every default model are ready, else 503 saying what is missing."""
    if not await state.triton.server_ready():
        return JSONResponse(
            status_code=503,
            content=error_body("not_ready", f"Triton at {state.triton.url} is not ready"),
        )
    state.catalog.refresh()
    defaults = state.catalog.defaults()
    if not defaults:
        return JSONResponse(
            status_code=503,
            content=error_body("not_ready", "no model is built: run `gantry models build`"),
        )
    missing = [b.card.name for b in defaults if not await state.triton.model_ready(b.card.name)]
    if missing:
        return JSONResponse(
            status_code=503,
            content=error_body("not_ready", f"models not ready: {', '.join(missing)}"),
        )
    return JSONResponse({"status": "ready", "models": [b.card.name for b in defaults]})


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
