"""The FastAPI application: ``uvicorn gateway.app:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from gantry import __version__
from gantry.core.settings import Settings, get_settings
from gantry.serving.pipelines import Pipelines
from gateway.admission import Admission
from gateway.auth.guard import Authenticator
from gateway.auth.keys import ApiKeyStore
from gateway.deps import AppState
from gateway.errors import install_error_handlers
from gateway.frontdoor import FrontDoor
from gateway.openapi import install_docs, install_openapi
from gateway.routers import (
    deblur,
    edit,
    faces,
    generate,
    health,
    inpaint,
    jobs,
    models,
    superres,
    translate,
)
from workers.interface import Jobs


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app with its pipelines, the jobs interface and the front door."""
    settings = settings or get_settings()
    pipelines = Pipelines(settings)
    authenticator = (
        Authenticator(ApiKeyStore(settings.effective_jobs_db_url))
        if settings.auth_mode == "keys"
        else None
    )
    state = AppState(
        settings=settings,
        pipelines=pipelines,
        jobs=Jobs(settings, catalog=pipelines.catalog),
        admission=Admission.from_settings(settings),
        authenticator=authenticator,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        grpc_server = None
        if settings.grpc_enabled:
            from gateway.grpc.server import start_grpc_server

            grpc_server = await start_grpc_server(state)
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
    for router in (
        health.router,
        models.router,
        superres.router,
        translate.router,
        edit.router,
        deblur.router,
        inpaint.router,
        generate.router,
        faces.router,
        jobs.router,
    ):
        app.include_router(router)
    install_openapi(app, state.pipelines.catalog, keys=authenticator is not None)
    install_docs(app)
    app.add_middleware(
        FrontDoor, settings=settings, admission=state.admission, authenticator=authenticator
    )
    if settings.cors_origins:  # outermost: a preflight is answered before the front door
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "HEAD", "OPTIONS"],
            allow_headers=["authorization", "x-api-key", "content-type"],
            expose_headers=["x-gantry-model", "x-gantry-model-version", "retry-after"],
        )
    return app
