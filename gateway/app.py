"""The FastAPI application: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from gantry import __version__
from gantry.core.settings import Settings, get_settings
from gantry.serving.pipelines import Pipelines
from gateway.deps import AppState
from gateway.errors import error_response, install_error_handlers
from gateway.metrics import REQUEST_LATENCY, REQUESTS
from gateway.openapi import install_docs, install_openapi
from gateway.routers import faces, health, jobs, models, superres
from workers.interface import Jobs

# Multipart framing around the file; a request body over the upload limit plus this is
# refused before it is parsed.
_MULTIPART_SLACK = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app with its pipelines and the jobs interface."""
    settings = settings or get_settings()
    state = AppState(settings=settings, pipelines=Pipelines(settings), jobs=Jobs(settings))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        grpc_server = None
        if settings.grpc_enabled:
            from gateway.grpc.server import start_grpc_server

            grpc_server = await start_grpc_server(
                state.pipelines.faces, host=settings.gateway_host, port=settings.grpc_port
            )
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=5)
            await state.pipelines.close()

    app = FastAPI(
        title="Gantry",
        version=__version__,
        description="Inference for GAN image models and face models, served by Triton.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Operation ids are the handler names (`superres`, `verify`, `create_job`): what a
        # client generated from the document calls its functions.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.gantry = state
    install_error_handlers(app)

    @app.middleware("http")
    async def limits_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        limit = (
            settings.max_job_input_bytes
            if request.url.path == "/v1/inputs"
            else settings.max_upload_bytes
        )
        if length and length.isdigit() and int(length) > limit + _MULTIPART_SLACK:
            return error_response(
                413, "upload_too_large", f"the request body exceeds the limit of {limit} bytes"
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
    install_openapi(app, state.pipelines.catalog)
    install_docs(app)
    return app
