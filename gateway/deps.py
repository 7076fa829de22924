"""FastAPI dependencies: the app's shared objects, as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gantry.settings import Settings
from gateway.services.catalog import ModelCatalog
from gateway.services.faces import FaceService
from gateway.services.jobs import JobService
from gateway.services.superres import SuperresService
from gateway.triton import TritonGateway


@dataclass
class AppState:
    """Objects created once per app and shared by every request."""

    settings: Settings
    triton: TritonGateway
    catalog: ModelCatalog
    superres: SuperresService
    faces: FaceService
    jobs: JobService


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.gantry
    return state


StateDep = Annotated[AppState, Depends(get_state)]
