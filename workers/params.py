"""The parameters of every job kind: pydantic models, and what is checked at submission.

The gateway validates a job with these before it is queued (and publishes them in its OpenAPI
as a union discriminated by ``kind``): first the fields, then :meth:`JobParams.check`, which
resolves models, versions and tiles in the catalog and reads zip directories, so everything
that can be known at submission is refused there with its own code. The worker validates
again when it runs the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gantry.core.errors import InvalidInput
from gantry.core.settings import Settings
from gantry.core.training import load_train_config
from gantry.serving.catalog import ModelCatalog
from gantry.serving.image_to_image import resolve_tile
from gantry.serving.synthesis import check_size
from workers.inputs import input_file, input_images

# A batch runs any tiled image-to-image model: super-resolution by default.
SUPERRES_BATCH_TASKS = ("superres", "image_to_image", "deblur")


@dataclass(frozen=True)
class Submission:
    """What the checks at submission may consult."""

    settings: Settings
    catalog: ModelCatalog


class JobParams(BaseModel):
    """Base of every job's parameters."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def input_ids(self) -> list[str]:
        """The stored inputs (POST /v1/inputs) this job reads."""
        return []

    def check(self, submission: Submission) -> None:
        """Refuse what is knowable before the job runs (default: its inputs exist)."""
        for input_id in self.input_ids():
            input_file(submission.settings, input_id)


class SuperresBatchParams(JobParams):
    """Many images (or zips of images) through the same tiling path as POST /v1/superres."""

    inputs: list[str] = Field(min_length=1, description="input ids from POST /v1/inputs")
    model: str | None = Field(default=None, description="a superres model; the default if absent")
    version: int | None = Field(default=None, ge=1, description="the model version")
    tile: int | None = Field(default=None, description="tile size in input pixels; 0 = whole")
    format: Literal["png", "jpeg", "webp"] = "png"

    def input_ids(self) -> list[str]:
        return list(self.inputs)

    def check(self, submission: Submission) -> None:
        settings = submission.settings
        if len(self.inputs) > settings.max_batch_images:
            raise InvalidInput(
                "too_many_images",
                f"{len(self.inputs)} inputs; the limit is {settings.max_batch_images} images",
            )
        name = self.model or settings.default_superres_model
        built = submission.catalog.resolve(name, task=SUPERRES_BATCH_TASKS, version=self.version)
        resolve_tile(built, self.tile)
        input_images(settings, self.inputs)  # every zip directory, and the image count


class SynthesisParams(JobParams):
    """Label map (+ optional instance map and per-instance features) to an image."""

    label_map: str = Field(description="input id of a PNG whose pixel values are class ids")
    instance_map: str | None = Field(default=None, description="input id of an instance-id PNG")
    features: dict[str, list[float]] | None = Field(
        default=None, description="instance id (class index without instance map) → vector"
    )
    model: str = "pix2pixhd-facades-tiny"
    version: int | None = Field(default=None, ge=1, description="the model version")
    width: int = Field(default=2048, ge=16, le=4096)
    height: int = Field(default=1024, ge=16, le=4096)

    def input_ids(self) -> list[str]:
        return [i for i in (self.label_map, self.instance_map) if i is not None]

    def check(self, submission: Submission) -> None:
        super().check(submission)
        built = submission.catalog.resolve(self.model, task="synthesis", version=self.version)
        check_size(built, self.width, self.height)


class TrainParams(JobParams):
    """A training run of a shipped config (``gantry train`` as a job, on the training queue)."""

    config: str = Field(description="a shipped training config, e.g. pix2pix-facades")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='config keys to override, dotted for sections: {"steps": 30, "optim.lr": 1e-4}',
    )
    publish: bool = Field(
        default=False, description="export the trained generator as the next model version"
    )

    def check(self, submission: Submission) -> None:
        if Path(self.config).suffix in (".yaml", ".yml"):
            # Jobs run shipped configs: a path would read files on the worker's machine.
            raise InvalidInput("unknown_config", "a job names a shipped config, not a file")
        config = load_train_config(self.config, self.overrides)
        if self.publish and config.publish is None:
            raise InvalidInput("not_publishable", f"config {self.config} names no model")
