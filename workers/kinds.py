"""Every job kind in one table: its Celery task, queue, parameters model and function.

The gateway validates parameters with the model and sends the task; a worker runs the
function. Both are named as ``module:attribute`` and imported on first use, so the gateway
never imports a job's heavy dependencies and adding a kind is adding one row here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from workers.runner import JobContext

INFERENCE_QUEUE = "inference"
TRAINING_QUEUE = "training"


class JobParams(BaseModel):
    """Base of every job's parameters."""

    def input_ids(self) -> list[str]:
        """The stored inputs (POST /v1/inputs) this job reads; checked before it is queued."""
        return []


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class JobKind:
    """One kind of job."""

    name: str
    task: str  # Celery task name; the task takes one argument, the job id
    queue: str
    params: str  # "module:Class" of its JobParams
    run: str  # "module:function" taking a JobContext, returning the result record

    def params_model(self) -> type[JobParams]:
        model: type[JobParams] = _load(self.params)
        return model

    def function(self) -> Callable[[JobContext], dict[str, Any]]:
        function: Callable[[JobContext], dict[str, Any]] = _load(self.run)
        return function


JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind(
            "superres_batch",
            "gantry.superres_batch",
            INFERENCE_QUEUE,
            "workers.jobs.superres_batch:SuperresBatchParams",
            "workers.jobs.superres_batch:run",
        ),
        JobKind(
            "synthesis",
            "gantry.synthesis",
            INFERENCE_QUEUE,
            "workers.jobs.synthesis_params:SynthesisParams",
            "workers.jobs.synthesis:run",
        ),
    )
}
