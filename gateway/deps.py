"""FastAPI dependencies: the app's shared objects, as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gantry.core.settings import Settings
from gantry.serving.pipelines import Pipelines
from gateway.admission import Admission
from gateway.auth.guard import Authenticator
from workers.interface import Jobs


@dataclass
class AppState:
    """Objects created once per app and shared by every request (REST and gRPC)."""

    settings: Settings
    pipelines: Pipelines
    jobs: Jobs
    admission: Admission
    authenticator: Authenticator | None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.gantry
    return state


StateDep = Annotated[AppState, Depends(get_state)]
