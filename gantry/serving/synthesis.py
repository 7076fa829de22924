"""Synthesis: a label map to an image with a pix2pixHD generator served by Triton.

Steps: decode the label (and instance) map, resize them (nearest) to the output size, build
the generator input (one-hot classes, instance boundary, per-instance features) as the card's
:class:`~gantry.core.cards.SynthesisSpec` says, one Triton call through the image-to-image
pipeline, encode PNG. Peak memory is bounded by the output size, which callers cap: the input
is (classes + 1 + features) x H x W float32 (16 channels: 134 MB at 2048 x 1024) plus the RGB
output; the network's own activations live in Triton.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from gantry.core.cards import BuiltCard, SynthesisSpec
from gantry.core.errors import Internal, InvalidInput
from gantry.core.imaging import encode_image
from gantry.core.labelmaps import classes_from_ids, generator_input
from gantry.core.preprocess import to_unit_range
from gantry.serving.catalog import ModelCatalog
from gantry.serving.image_to_image import ImageToImagePipeline
from gantry.serving.tiling import plan_tiles

Stage = Callable[[float, str], None]


@dataclass(frozen=True)
class SynthesisResult:
    """A synthesised PNG."""

    png: bytes
    model: str
    version: int
    width: int
    height: int


def read_index_map(data: bytes, name: str) -> NDArray[np.int64]:
    """A PNG of integer ids (palette, L or I;16).

    Raises:
        InvalidInput: ``invalid_label_map`` for another mode, ``invalid_image`` for a file
            that is not an image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode not in ("P", "L", "I", "I;16"):
                raise InvalidInput(
                    "invalid_label_map",
                    f"{name}: a label map must be a palette, 8-bit or 16-bit grey PNG of ids, "
                    f"not {image.mode}",
                )
            return np.asarray(image).astype(np.int64)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput("invalid_image", f"{name}: {exc}") from exc


def resize_nearest(ids: NDArray[np.int64], height: int, width: int) -> NDArray[np.int64]:
    """An id map resized without inventing ids (nearest neighbour)."""
    if ids.shape == (height, width):
        return ids
    resized = cv2.resize(ids.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
    return resized.astype(np.int64)


def check_size(built: BuiltCard, width: int, height: int) -> None:
    """Raises InvalidInput unless the model can produce ``width`` x ``height``."""
    multiple = built.card.size_multiple
    if width % multiple or height % multiple:
        raise InvalidInput(
            "invalid_size", f"{built.name} needs width and height in multiples of {multiple}"
        )


def synthesis_spec(built: BuiltCard) -> SynthesisSpec:
    spec = built.card.spec
    if not isinstance(spec, SynthesisSpec):
        raise Internal("bad_card", f"{built.name} is a {spec.task} model, not synthesis")
    return spec


class SynthesisPipeline:
    """Label maps to images with the synthesis models of the catalog."""

    def __init__(self, *, catalog: ModelCatalog, image_to_image: ImageToImagePipeline) -> None:
        self.catalog = catalog
        self.image_to_image = image_to_image

    def model(self, name: str, version: int | None = None) -> BuiltCard:
        return self.catalog.resolve(name, task="synthesis", version=version)

    async def run(
        self,
        *,
        built: BuiltCard,
        label_map: tuple[str, bytes],
        instance_map: tuple[str, bytes] | None,
        features: Mapping[int, Sequence[float]] | None,
        width: int,
        height: int,
        stage: Stage = lambda _fraction, _what: None,
    ) -> SynthesisResult:
        """Synthesise one image; ``stage(fraction, what)`` reports each step (a cancel point)."""
        spec = synthesis_spec(built)
        check_size(built, width, height)
        stage(0.05, "reading the label map")
        label_name, label_data = label_map
        try:
            classes = classes_from_ids(
                read_index_map(label_data, label_name),
                first_id=spec.first_label_id,
                n_classes=spec.n_classes,
            )
        except ValueError as exc:
            raise InvalidInput("invalid_label_map", f"{label_name}: {exc}") from exc
        classes = resize_nearest(classes, height, width)
        instances = None
        if instance_map is not None:
            inst_name, inst_data = instance_map
            instances = resize_nearest(read_index_map(inst_data, inst_name), height, width)

        stage(0.15, "building the generator input")
        x = generator_input(
            classes,
            instances,
            dict(features or {}),
            n_classes=spec.n_classes,
            feat_num=spec.feat_num,
            boundary=spec.boundary,
        )
        stage(0.25, f"synthesising {width}x{height} in Triton")
        whole = plan_tiles(height, width, tile=0, pad=0)
        output = await self.image_to_image.run_array(built, x, whole)
        del x

        stage(0.9, "encoding PNG")
        rgb = to_unit_range(output, spec.output_range).transpose(1, 2, 0)
        png = encode_image(rgb, alpha=None, grayscale=False, bit_depth=8, fmt="png")
        return SynthesisResult(png, built.name, built.version, width, height)


def feature_table(features: Mapping[str, Sequence[float]] | None) -> dict[int, Any]:
    """JSON feature keys (strings) → instance ids."""
    return {int(k): v for k, v in (features or {}).items()}
