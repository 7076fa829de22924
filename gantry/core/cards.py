"""Model cards: the single description of a served model, with a spec typed by its task.

The exporter, the Triton config writer, the serving pipelines, the gateway's validation and
``GET /v1/models`` all read a card; nothing about a model is written twice. A card has the
fields every model shares (tensors, input normalisation, batching, weights) and a ``spec``
whose type depends on the task: a super-resolution model has a scale and a tile, a detector
its anchors, an embedder its landmark template and threshold. Cards are plain pydantic models
without PyTorch, so the serving path reads them without the trainer's dependencies.

Each built version of a model stores its card and what the build measured (:class:`BuildInfo`)
as ``model_repository/<name>/<version>/card.json`` (see :mod:`gantry.core.repository`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TritonDType = Literal["TYPE_FP32", "TYPE_FP16", "TYPE_UINT8", "TYPE_INT64", "TYPE_INT32"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


class TensorSpec(_Frozen):
    """One named input or output tensor, without the batch dimension (-1 = dynamic)."""

    name: str
    dtype: TritonDType = "TYPE_FP32"
    dims: tuple[int, ...]


class WeightsSpec(_Frozen):
    """Where the weights come from and under which terms."""

    importer: str = Field(description="name in trainer.weights.loader.WEIGHT_SOURCES")
    source: str = Field(description="human-readable origin of the weights")
    license: str
    upstream: str = Field(description="the reference implementation whose keys we keep")
    research_only: bool = Field(
        default=False, description="weights or training data restricted to research use"
    )


# --- task specs ------------------------------------------------------------------------------


class TiledImageSpec(_Frozen):
    """An image in, an image out, by a fully convolutional network.

    Such models run tiled: windows of ``tile_size`` input pixels overlap by ``2 * tile_pad``
    and are cross-faded, after mirror-padding the whole image by ``pre_pad``.
    """

    scale: int = Field(default=1, ge=1, description="output pixels per input pixel, per side")
    tile_size: int = Field(default=0, ge=0, description="recommended tile, input px; 0 = none")
    tile_pad: int = Field(default=0, ge=0, description="context each tile borrows")
    pre_pad: int = Field(default=0, ge=0, description="reflect padding, cropped after")
    output_range: tuple[float, float] = Field(
        default=(0.0, 1.0), description="value range of the output image"
    )


class ImageToImageSpec(TiledImageSpec):
    """Same-size image translation into another domain (POST /v1/translate)."""

    task: Literal["image_to_image"] = "image_to_image"


class DeblurSpec(TiledImageSpec):
    """Same-size restoration of a blurred photo (POST /v1/deblur): its own task, so the
    deblurring endpoint never runs a translation model and the translation endpoint never
    runs a deblurring one."""

    task: Literal["deblur"] = "deblur"


class InpaintSpec(TiledImageSpec):
    """Hole filling (POST /v1/inpaint): the network takes RGB and the mask as one tensor,
    (4, H, W), the mask last with 1 inside the hole, and outputs the whole image; the served
    answer is the input outside the hole and this output inside it.

    Only the hole's bounding box grown by ``context`` pixels on each side runs (clipped to
    the image, its origin on the ``size_multiple`` grid so the network sees the pixels it
    would see in the whole image): ``context`` covers half the receptive field, so the fill
    is the whole image's fill. Larger regions run in tiles that borrow ``tile_pad`` pixels
    of context each side."""

    task: Literal["inpaint"] = "inpaint"
    context: int = Field(ge=0, description="px of context each side of the hole's box")


class SuperresSpec(TiledImageSpec):
    """Super-resolution: a tiled image-to-image model with a scale above one."""

    task: Literal["superres"] = "superres"


class SynthesisSpec(_Frozen):
    """A label map (plus instance map and features) to an image, pix2pixHD-style."""

    task: Literal["synthesis"] = "synthesis"
    class_names: tuple[str, ...]
    first_label_id: int = Field(
        default=0, description="pixel value of class 0 in the label PNGs (CMP facades: 1)"
    )
    boundary: bool = Field(default=True, description="an instance-boundary input channel")
    feat_num: int = Field(default=0, ge=0, description="per-instance feature channels")
    output_range: tuple[float, float] = (-1.0, 1.0)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_channels(self) -> int:
        """One-hot classes, the boundary channel, then features (pix2pixHD's order)."""
        return self.n_classes + int(self.boundary) + self.feat_num


class PriorSpec(_Frozen):
    """Anchor layout of an SSD-style detector (RetinaFace): sizes per stride, variances."""

    min_sizes: tuple[tuple[int, ...], ...] = Field(description="anchor sides, per feature map")
    steps: tuple[int, ...] = Field(description="stride of each feature map, input pixels")
    variance: tuple[float, float] = (0.1, 0.2)
    clip: bool = Field(default=False, description="clamp priors to [0, 1]")

    @model_validator(mode="after")
    def _one_size_group_per_step(self) -> PriorSpec:
        if len(self.min_sizes) != len(self.steps):
            raise ValueError(f"{len(self.min_sizes)} min_sizes groups for {len(self.steps)} steps")
        return self


class DetectionSpec(_Frozen):
    """A single-network face detector with an anchor layout (RetinaFace)."""

    task: Literal["face_detection"] = "face_detection"
    priors: PriorSpec
    num_landmarks: int = 5
    nms_threshold: float = 0.4


class DetectionStageSpec(_Frozen):
    """One network of a detection cascade (MTCNN P-, R- or O-Net)."""

    task: Literal["face_detection_stage"] = "face_detection_stage"
    cascade: str = Field(description="the cascade this stage belongs to, e.g. mtcnn")
    stage: Literal["pnet", "rnet", "onet"]


class EmbeddingSpec(_Frozen):
    """A face embedder on aligned chips: the chip's landmark template and the threshold."""

    task: Literal["face_embedding"] = "face_embedding"
    embedding_dim: int
    landmark_template: tuple[tuple[float, float], ...] = Field(
        description="where the 5 landmarks (eyes, nose, mouth corners) go in the aligned chip"
    )
    verify_threshold: float | None = Field(
        default=None, description="cosine similarity at and above which two faces match"
    )
    threshold_note: str = ""


class FaceEditSpec(_Frozen):
    """Face editing at a fixed size (IcGAN, StarGAN, GeneGAN): a face and what to change.

    The model's first input is the face (3, S, S), cut from an aligned face photo as its
    training data were (``crop``). Its second input is the edit: with ``conditioning`` of
    ``attributes``, a (c,) vector over ``attributes``, 1 to set, 0 to clear, -1 to keep what
    the model reads from the face; with ``donor``, a second face (3, S, S) whose attribute
    the first takes.
    """

    task: Literal["face_edit"] = "face_edit"
    conditioning: Literal["attributes", "donor"]
    attributes: tuple[str, ...] = Field(
        default=(), description="the attributes an edit may set or clear (attributes models)"
    )
    exclusive_groups: tuple[tuple[str, ...], ...] = Field(
        default=(),
        description="attributes of which a face has one (hair colours): setting one clears "
        "the others the request does not name",
    )
    attribute: str = Field(default="", description="the attribute a donor passes on")
    crop: Literal["center_square"] = Field(
        default="center_square",
        description="how the face is cut: the centre square (CelebA aligned faces)",
    )
    output_range: tuple[float, float] = (-1.0, 1.0)

    @model_validator(mode="after")
    def _conditioning_fields(self) -> FaceEditSpec:
        if self.conditioning == "attributes" and not self.attributes:
            raise ValueError("an attributes model lists its attributes")
        if self.conditioning == "donor" and not self.attribute:
            raise ValueError("a donor model names the attribute it passes on")
        for group in self.exclusive_groups:
            if unknown := set(group) - set(self.attributes):
                raise ValueError(f"exclusive group names unknown attributes {sorted(unknown)}")
        return self


class StyleTranslationSpec(_Frozen):
    """Multi-domain translation with styles (StarGAN v2) of aligned faces at a fixed size.

    Inputs, in order: the face (3, S, S) cut as ``crop`` says, a reference face (3, S, S),
    a latent code (``latent_dim``,), the target domain one-hot (len(domains),) and a flag
    (1,): 1 takes the style from the reference, 0 maps the latent code to one.
    """

    task: Literal["style_translation"] = "style_translation"
    domains: tuple[str, ...] = Field(min_length=2, description="the target domains, in order")
    latent_dim: int = Field(ge=1, description="length of the latent code a seed draws")
    crop: Literal["center_square"] = "center_square"
    output_range: tuple[float, float] = (-1.0, 1.0)


class GenerationSpec(_Frozen):
    """Unconditional generation (POST /v1/generate): a latent in, an image out.

    The model's only input is a (``latent_dim``,) latent, which serving draws from a seed
    (``latent_distribution``: standard normals from numpy's PCG64), so a seed fixes the image;
    its only output a (3, ``resolution``, ``resolution``) image in ``output_range``.
    """

    task: Literal["generation"] = "generation"
    latent_dim: int = Field(ge=1, description="length of the latent a seed draws")
    resolution: int = Field(ge=1, description="side of the square image, in pixels")
    latent_distribution: Literal["standard_normal"] = "standard_normal"
    output_range: tuple[float, float] = (-1.0, 1.0)


class LandmarksSpec(_Frozen):
    """A landmark regressor on square face crops cut around each detected box.

    The crop is the square of side ``crop_scale`` times the box's longer side, centred on the
    box (black outside the image), resized to the card's input size; the network answers
    ``(num_points, 2)`` positions relative to that square, (0, 0) its top-left corner and
    (1, 1) its bottom-right.
    """

    task: Literal["face_landmarks"] = "face_landmarks"
    num_points: int = Field(ge=1)
    scheme: str = Field(description="the point layout, e.g. ibug68 (the 300-W markup)")
    crop_scale: float = Field(default=1.0, gt=0.0, description="crop side / box's longer side")


class FrontalizationSpec(_Frozen):
    """A face frontalizer: a square grey crop around the detected box and the face's landmark
    points in → the frontal view of the face, a chip aligned on ``frontal_template``.

    The crop is cut like a landmark crop (``crop_scale`` times the box's longer side, centred
    on the box); the points are ``landmark_model``'s, relative to that crop. The output's five
    points (eye centres, nose tip, mouth corners, as seen) sit at ``frontal_template``
    (fractions of its side), which is how a frontalized face is aligned for an embedder.
    """

    task: Literal["face_frontalization"] = "face_frontalization"
    crop_scale: float = Field(gt=0.0, description="crop side / box's longer side")
    landmark_model: str = Field(description="the landmark model whose points the network reads")
    num_points: int = Field(ge=1, description="points per face the network reads")
    frontal_template: tuple[tuple[float, float], ...] = Field(
        min_length=5, max_length=5, description="the output's five points, fractions of its side"
    )
    output_range: tuple[float, float] = (-1.0, 1.0)


TaskSpec = Annotated[
    SuperresSpec
    | ImageToImageSpec
    | DeblurSpec
    | InpaintSpec
    | SynthesisSpec
    | DetectionSpec
    | DetectionStageSpec
    | EmbeddingSpec
    | LandmarksSpec
    | FaceEditSpec
    | StyleTranslationSpec
    | GenerationSpec
    | FrontalizationSpec,
    Field(discriminator="task"),
]
Task = Literal[
    "superres",
    "image_to_image",
    "deblur",
    "inpaint",
    "synthesis",
    "face_detection",
    "face_detection_stage",
    "face_embedding",
    "face_landmarks",
    "face_edit",
    "style_translation",
    "generation",
    "face_frontalization",
]


class ModelCard(_Frozen):
    """Everything the platform needs to know to export, serve and validate one model."""

    name: str = Field(description="Triton model name, also the public model id")
    architecture: str = Field(description="name in trainer.archs.ARCHS")
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # --- how RGB pixels become the first input (see gantry.core.preprocess) ----------------
    color_order: Literal["RGB", "BGR"] = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    min_input_size: int = 1
    size_multiple: int = Field(default=1, description="height and width must be multiples")
    # --- Triton batching -------------------------------------------------------------------
    max_batch_size: int = 8
    preferred_batch_sizes: tuple[int, ...] = (2, 4)
    max_queue_delay_us: int = 2000
    weights: WeightsSpec
    default: bool = Field(default=False, description="must be ready for /readyz")
    spec: TaskSpec

    @property
    def task(self) -> Task:
        return self.spec.task

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
    """What the export stage measured when it produced one version's served files."""

    model_config = ConfigDict(protected_namespaces=())

    version: int = Field(ge=1, description="Triton model version (a directory name)")
    format: Literal["onnx", "tensorrt_plan"] = "onnx"
    weights_file: str
    onnx_sha256: str
    opset: int
    parity_max_abs_err: float = Field(description="ONNX Runtime vs PyTorch on real images")
    parity_images: list[str]
    gflops_per_input_pixel: float = Field(description="multiply-adds x2 per input pixel")
    parameters: int
    built_at: str
    build_key: str = Field(default="", description="digest of what the build was made from")
    training_run: str | None = Field(default=None, description="the run that trained them")


class BuiltCard(BaseModel):
    """One version of a model as stored in the repository: its card and its build record."""

    model_config = ConfigDict(protected_namespaces=())

    card: ModelCard
    build: BuildInfo

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> int:
        return self.build.version

    @classmethod
    def read(cls, path: Path) -> BuiltCard:
        """Read a ``card.json``."""
        return cls.model_validate_json(path.read_bytes())
