"""Model cards: the single description of a served model.

The exporter, the Triton config writer, the gateway's validation and ``GET /v1/models`` all
read a card; nothing about a model is written twice. Cards are plain pydantic models with no
PyTorch import, so the gateway can read them without the trainer's dependencies. The
repository builder stores each card, plus what the build measured (:class:`BuildInfo`), as
``model_repository/<name>/card.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TritonDType = Literal["TYPE_FP32", "TYPE_FP16", "TYPE_UINT8", "TYPE_INT64", "TYPE_INT32"]
Task = Literal[
    "superres",
    "face_detection",
    "face_detection_stage",
    "face_landmarks",
    "face_embedding",
    "synthesis",
]

CARD_FILE = "card.json"


class TensorSpec(BaseModel):
    """One named input or output tensor, without the batch dimension (-1 = dynamic)."""

    model_config = ConfigDict(frozen=True)

    name: str
    dtype: TritonDType = "TYPE_FP32"
    dims: tuple[int, ...]


class PriorSpec(BaseModel):
    """Anchor layout of an SSD-style detector (RetinaFace)."""

    model_config = ConfigDict(frozen=True)

    min_sizes: tuple[tuple[int, ...], ...]
    steps: tuple[int, ...]
    variance: tuple[float, float] = (0.1, 0.2)


class WeightsSpec(BaseModel):
    """Where the weights come from and under which terms."""

    model_config = ConfigDict(frozen=True)

    importer: str = Field(description="name in trainer.weights.loader.WEIGHT_SOURCES")
    source: str = Field(description="human-readable origin of the weights")
    license: str
    upstream: str = Field(description="the reference implementation whose keys we keep")


class ModelCard(BaseModel):
    """Everything the platform needs to know to export, serve and validate one model."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    name: str = Field(description="Triton model name, also the public model id")
    version: int = 1
    task: Task
    architecture: str = Field(description="name in trainer.archs.ARCHS")
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    color_order: Literal["RGB", "BGR"] = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: int = 1
    tile_size: int = Field(default=0, description="recommended tile, input pixels; 0 = none")
    tile_pad: int = Field(default=0, description="context each tile borrows from neighbours")
    pre_pad: int = Field(
        default=0, description="reflect padding around the whole image, cropped after"
    )
    min_input_size: int = 1
    size_multiple: int = Field(default=1, description="height and width must be multiples")
    max_batch_size: int = 8
    preferred_batch_sizes: tuple[int, ...] = (2, 4)
    max_queue_delay_us: int = 2000
    weights: WeightsSpec
    default: bool = Field(default=False, description="must be ready for /readyz")
    # --- face models ---------------------------------------------------------------------
    priors: PriorSpec | None = None
    landmark_template: tuple[tuple[float, float], ...] | None = Field(
        default=None,
        description="where the 5 landmarks (eyes, nose, mouth corners) go in the aligned chip",
    )
    embedding_dim: int | None = None
    verify_threshold: float | None = Field(
        default=None, description="cosine similarity at and above which two faces match"
    )
    threshold_note: str = ""
    # --- synthesis -------------------------------------------------------------------------
    n_classes: int | None = None
    feat_num: int = 0
    class_names: tuple[str, ...] = ()

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """Fixed (height, width) of the first input, or None when it is dynamic."""
        dims = self.inputs[0].dims
        if len(dims) == 3 and dims[1] > 0 and dims[2] > 0:
            return dims[1], dims[2]
        return None

    @property
    def license(self) -> str:
        """Licence of the weights."""
        return self.weights.license


class BuildInfo(BaseModel):
    """What `gantry models build` measured when it produced the served files."""

    model_config = ConfigDict(protected_namespaces=())

    format: Literal["onnx", "tensorrt_plan"] = "onnx"
    weights_file: str
    onnx_sha256: str
    opset: int
    parity_max_abs_err: float = Field(description="ONNX Runtime vs PyTorch on real images")
    parity_images: list[str]
    gflops_per_input_pixel: float = Field(description="multiply-adds x2 per input pixel")
    parameters: int
    built_at: str


class BuiltCard(BaseModel):
    """A card as stored in the model repository, with its build record."""

    model_config = ConfigDict(protected_namespaces=())

    card: ModelCard
    build: BuildInfo

    def write(self, model_dir: Path) -> Path:
        """Write ``card.json`` into ``model_dir``."""
        path = model_dir / CARD_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path


def read_built_cards(repository: Path) -> dict[str, BuiltCard]:
    """All built cards in a model repository, by model name."""
    cards: dict[str, BuiltCard] = {}
    if not repository.is_dir():
        return cards
    for path in sorted(repository.glob(f"*/{CARD_FILE}")):
        built = BuiltCard.model_validate(json.loads(path.read_text()))
        cards[built.card.name] = built
    return cards
