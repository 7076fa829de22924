"""Parameters of a ``synthesis`` job (torch-free: the gateway validates with them)."""

from __future__ import annotations

from pydantic import Field

from workers.kinds import JobParams


class SynthesisParams(JobParams):
    """Label map (+ optional instance map and per-instance features) to an image."""

    label_map: str = Field(description="input id of a PNG whose pixel values are class ids")
    instance_map: str | None = Field(default=None, description="input id of an instance-id PNG")
    features: dict[str, list[float]] | None = Field(
        default=None, description="instance id (class index without instance map) → vector"
    )
    model: str = "pix2pixhd-facades-tiny"
    width: int = Field(default=2048, ge=16, le=4096)
    height: int = Field(default=1024, ge=16, le=4096)

    def input_ids(self) -> list[str]:
        return [i for i in (self.label_map, self.instance_map) if i is not None]
