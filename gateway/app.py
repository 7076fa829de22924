"""The FastAPI application: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from gantry.settings import Settings, get_settings
from gateway.deps import AppState
from gateway.errors import error_body, install_error_handlers
from gateway.metrics import REQUEST_LATENCY, REQUESTS
from gateway.routers import faces, health, jobs, models, superres
from gateway.services.catalog import ModelCatalog
from gateway.services.faces import FaceService
from gateway.services.jobs import JobService
from gateway.services.superres import SuperresService, ThroughputEstimator
from gateway.triton import TritonGateway
from workers.celery_app import create_celery
from workers.store import JobStore

# Multipart framing around the file; a request body over the upload limit plus this is
# refused before it is parsed.
_MULTIPART_SLACK = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app with its services."""
    settings = settings or get_settings()
    triton = TritonGateway(settings.triton_url, timeout_s=settings.triton_timeout_s)
    catalog = ModelCatalog(settings.model_repository)
    state = AppState(
        settings=settings,
        triton=triton,
        catalog=catalog,
        superres=SuperresService(
            triton=triton,
            catalog=catalog,
            settings=settings,
            estimator=ThroughputEstimator(settings.serving_gflops),
        ),
        faces=FaceService(triton=triton, catalog=catalog, settings=settings),
        jobs=JobService(
            settings=settings,
            store=JobStore(settings.effective_jobs_db_url),
            celery=create_celery(settings),
        ),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        grpc_server = None
        if settings.grpc_enabled:
            from gateway.grpc_server import start_grpc_server

            grpc_server = await start_grpc_server(
                state.faces, host=settings.gateway_host, port=settings.grpc_port
            )
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=5)
            await triton.close()

    app = FastAPI(
        title="Gantry",
        version="0.1.0",
        description="Inference for GAN image models and face models, served by Triton.",
        lifespan=lifespan,
    )
    app.state.gantry = state
    install_error_handlers(app)

    @app.middleware("http")
    async def limits_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if (
            length
            and length.isdigit()
            and int(length) > settings.max_upload_bytes + _MULTIPART_SLACK
        ):
            return JSONResponse(
                status_code=413,
                content=error_body(
                    "upload_too_large",
                    f"the request body exceeds the limit of {settings.max_upload_bytes} bytes",
                ),
            )
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        REQUESTS.labels(route=path, status=str(response.status_code)).inc()
        REQUEST_LATENCY.labels(route=path).observe(time.perf_counter() - start)
        return response

    for router in (health.router, models.router, superres.router, faces.router, jobs.router):
        app.include_router(router)
    return app
