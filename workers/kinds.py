"""Every job kind in one registry: its Celery task, queue, parameters model and function.

The gateway validates parameters with the model and sends the task; a worker runs the
function, named as ``module:attribute`` and imported on first use, so the gateway never
imports a job's heavy dependencies and adding a kind is adding one row here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gantry.core.registry import Registry
from workers.params import JobParams, SuperresBatchParams, SynthesisParams, TrainParams

if TYPE_CHECKING:
    from workers.runner import JobContext

INFERENCE_QUEUE = "inference"
TRAINING_QUEUE = "training"


@dataclass(frozen=True)
class JobKind:
    """One kind of job."""

    name: str
    task: str  # Celery task name; the task takes one argument, the job id
    queue: str
    params: type[JobParams]
    run: str  # "module:function" taking a JobContext, returning the result record
    description: str = ""

    def function(self) -> Callable[[JobContext], dict[str, Any]]:
        module, _, attribute = self.run.partition(":")
        function: Callable[[JobContext], dict[str, Any]] = getattr(
            importlib.import_module(module), attribute
        )
        return function


JOB_KINDS: Registry[JobKind] = Registry("job kind")
for _kind in (
    JobKind(
        "superres_batch",
        "gantry.superres_batch",
        INFERENCE_QUEUE,
        SuperresBatchParams,
        "workers.jobs.superres_batch:run",
        "images or zips of images upscaled; the result is a zip",
    ),
    JobKind(
        "synthesis",
        "gantry.synthesis",
        INFERENCE_QUEUE,
        SynthesisParams,
        "workers.jobs.synthesis:run",
        "a label map to an image (2048x1024 by default); the result is a PNG",
    ),
    JobKind(
        "train",
        "gantry.train",
        TRAINING_QUEUE,
        TrainParams,
        "workers.jobs.train:run",
        "a training run of a shipped config (resumes from its checkpoint after a worker "
        "loss); with publish, a new model version; the result is a zip of its files",
    ),
):
    JOB_KINDS.add(_kind.name, _kind)
