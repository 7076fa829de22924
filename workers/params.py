"""The parameters of every job kind: pydantic models, torch-free.

The gateway validates a job at submission with these (and publishes them in its OpenAPI as a
union discriminated by ``kind``); the worker validates again when it runs the job.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class JobParams(BaseModel):
    """Base of every job's parameters."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def input_ids(self) -> list[str]:
        """The stored inputs (POST /v1/inputs) this job reads; checked before it is queued."""
        return []


class SuperresBatchParams(JobParams):
    """Many images (or zips of images) through the same tiling path as POST /v1/superres."""

    inputs: list[str] = Field(min_length=1, description="input ids from POST /v1/inputs")
    model: str | None = Field(default=None, description="a superres model; the default if absent")
    version: int | None = Field(default=None, ge=1, description="the model version")
    tile: int | None = Field(default=None, description="tile size in input pixels; 0 = whole")
    format: Literal["png", "jpeg", "webp"] = "png"

    def input_ids(self) -> list[str]:
        return list(self.inputs)


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
