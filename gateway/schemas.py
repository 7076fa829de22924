"""Response models of every JSON endpoint: what the OpenAPI document promises, checked.

Field names and shapes are CONTRACT.md's; the models make them machine-readable, so a
client generated from ``/openapi.json`` gets typed results.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from gantry.core.cards import BuildInfo, ModelCard, TaskSpec, TensorSpec, WeightsSpec
from gantry.serving.faces.service import FaceResult


class _Model(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class Health(_Model):
    status: Literal["ok"] = "ok"


class Ready(_Model):
    status: Literal["ready"] = "ready"
    models: list[str] = Field(description="the default models, all ready")


class ModelVersionInfo(_Model):
    """One built version of a model."""

    version: int
    is_default: bool = Field(description="the version requests get without `version`")
    ready: bool = Field(description="loaded and ready in Triton")
    card: ModelCard
    build: BuildInfo


class ModelInfo(_Model):
    """A model, summarised from its default version, with every version listed."""

    name: str
    version: int = Field(description="the default (promoted) version")
    task: str
    license: str
    research_only: bool
    architecture: str
    description: str
    scale: int | None = Field(description="upscale factor of image-to-image models")
    tile_size: int | None
    tile_pad: int | None
    color_order: Literal["RGB", "BGR"]
    value_range: tuple[float, float]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    weights: WeightsSpec
    default: bool = Field(description="must be ready for /readyz")
    format: str
    gflops_per_input_pixel: float
    parity_max_abs_err: float
    ready: bool = Field(description="the default version is ready in Triton")
    spec: TaskSpec
    versions: list[ModelVersionInfo]


class ModelList(_Model):
    models: list[ModelInfo]


class ModelRef(_Model):
    """A model and the version that answered."""

    name: str
    version: int


class Face(_Model):
    """One face, in input-image pixels."""

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2")
    score: float
    landmarks: list[tuple[float, float]] = Field(
        description="left eye, right eye, nose, left mouth corner, right mouth corner"
    )

    @classmethod
    def of(cls, face: FaceResult) -> Self:
        r = face.rounded()
        return cls(box=r.box, score=r.score, landmarks=list(r.landmarks))


class EmbeddedFace(Face):
    embedding: list[float] = Field(description="L2-normalised")
    model: str

    @classmethod
    def of(cls, face: FaceResult) -> EmbeddedFace:
        r = face.rounded()
        return cls(
            box=r.box,
            score=r.score,
            landmarks=list(r.landmarks),
            embedding=list(face.embedding or ()),
            model=face.model or "",
        )


class LandmarkedFace(Face):
    """One face with the landmark model's points, in input-image pixels."""

    landmarks: list[tuple[float, float]] = Field(
        description="the model's points (its card's count), in its scheme's order"
    )


class Landmarks(_Model):
    width: int
    height: int
    faces: list[LandmarkedFace]
    model: str
    version: int
    scheme: str = Field(description="the point layout, e.g. ibug68 (the 300-W markup)")
    detector: str
    models: list[ModelRef] = Field(description="the detector's model(s) and versions")


class FrontalFace(_Model):
    """One detected face and its frontal view."""

    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2")
    score: float
    image: str = Field(description="the frontal view: a base64 PNG, square, 8-bit grey")


class Frontalizations(_Model):
    width: int
    height: int
    faces: list[FrontalFace]
    model: str
    version: int
    landmark_model: ModelRef = Field(description="the model whose points the frontalizer read")
    detector: str
    models: list[ModelRef] = Field(description="the detector's model(s) and versions")


class Detections(_Model):
    width: int
    height: int
    faces: list[Face]
    detector: str
    models: list[ModelRef] = Field(description="the detector's model(s) and versions")


class Embeddings(_Model):
    width: int
    height: int
    faces: list[EmbeddedFace]
    model: str
    version: int
    detector: str


class Verification(_Model):
    match: bool
    similarity: float = Field(description="cosine similarity; higher for the same person")
    threshold: float = Field(description="the value `match` was decided at")
    model: str
    version: int
    face_a: EmbeddedFace
    face_b: EmbeddedFace


JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobError(_Model):
    code: str
    message: str


class JobInfo(_Model):
    """A job's record."""

    id: str
    kind: str
    status: JobStatus
    stage: str
    progress: float = Field(ge=0.0, le=1.0)
    result: dict[str, object] | None
    error: JobError | None
    attempts: int
    created_at: str
    updated_at: str


class JobAccepted(_Model):
    id: str
    kind: str
    status: JobStatus


class JobList(_Model):
    jobs: list[JobInfo]
    page: int
    next: int | None = Field(description="the next page, or null on the last one")


class StoredInput(_Model):
    id: str = Field(description="the input id jobs refer to")
    filename: str
    size: int
