"""Inpainting (``POST /v1/inpaint``): fill the white part of a mask, keep every other pixel.

An inpainting card (:class:`~gantry.core.cards.InpaintSpec`, GLCIC's completion network)
takes RGB and the mask as one (4, H, W) tensor and outputs a whole image; the answer is the
input outside the hole and that output inside it, so no pixel outside the hole changes
(bit for bit, at any depth, alpha and grey kept).

**Mask.** The same size as the image; white (1) = fill, black (0) = keep; binary: every
pixel black or white, the colour channels equal (anti-aliased, JPEG-compressed or grey
masks are refused with ``invalid_mask`` rather than thresholded at a guess). Its alpha, if
any, is ignored: a mask's colour decides.

**What runs.** A hole pixel's fill depends on the pixels within half the network's
receptive field (about 150 px for GLCIC), so only the hole's bounding box grown by the
card's ``context`` on each side runs (:func:`hole_region`), clipped to the image, with its
top-left corner on the card's ``size_multiple`` grid so the strided layers see the pixels
they would see in the whole image: the fill equals the whole image's. That region goes
through the generic tiled pipeline (padded to what the network takes, in windows of the
card's ``tile_size`` sharing ``tile_pad`` px of context when it is larger, cross-faded).
A region over the synchronous compute budget is refused (413); no batch job takes masks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.core.cards import BuiltCard, InpaintSpec
from gantry.core.errors import Internal, InvalidInput, TooLarge
from gantry.core.imaging import (
    CONTENT_TYPES,
    DecodedImage,
    OutputFormat,
    check_encodable,
    decode_image,
    encode_image,
)
from gantry.core.preprocess import normalise, to_unit_range
from gantry.serving.image_to_image import ImageResult, ImageToImagePipeline, estimate_gflop
from gantry.serving.metrics import PIXELS_OUT
from gantry.serving.tiling import crop_output, pad_image

INPAINT_TASKS = ("inpaint",)


def read_mask(mask: DecodedImage, height: int, width: int) -> NDArray[np.bool_]:
    """The hole (True = fill) of a decoded mask for a ``height`` x ``width`` image.

    Raises:
        InvalidInput: ``mask_size_mismatch``: not the image's size; ``invalid_mask``: a pixel
            that is neither black nor white; ``empty_mask``: no white pixel.
    """
    rgb = mask.rgb
    if rgb.shape[:2] != (height, width):
        raise InvalidInput(
            "mask_size_mismatch",
            f"the mask is {rgb.shape[1]}x{rgb.shape[0]}, the image {width}x{height}: "
            "they must be the same size",
        )
    white = rgb == 1.0
    black = rgb == 0.0
    binary = (white.all(axis=2) | black.all(axis=2)).all()
    if not binary:
        raise InvalidInput(
            "invalid_mask",
            "the mask must be binary: every pixel black (keep) or white (fill); save it as a "
            "PNG without anti-aliasing (JPEG compression greys its edges)",
        )
    hole: NDArray[np.bool_] = white[:, :, 0]
    if not hole.any():
        raise InvalidInput("empty_mask", "the mask has no white pixel: there is nothing to fill")
    return hole


@dataclass(frozen=True)
class Region:
    """The window of the image that runs: rows ``[top, bottom)``, columns ``[left, right)``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    def of(self, array: NDArray[Any]) -> NDArray[Any]:
        """The region of an H x W (x C) array."""
        return array[self.top : self.bottom, self.left : self.right]


def hole_region(hole: NDArray[np.bool_], *, context: int, multiple: int) -> Region:
    """The hole's bounding box grown by ``context`` px each side and clipped to the image,
    its top-left corner moved up and left onto the ``multiple`` grid."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    height, width = hole.shape

    def start(first: int) -> int:
        return max(0, first - context) // multiple * multiple

    return Region(
        top=start(int(rows[0])),
        left=start(int(cols[0])),
        bottom=min(height, int(rows[-1]) + 1 + context),
        right=min(width, int(cols[-1]) + 1 + context),
    )


def inpaint_spec(built: BuiltCard) -> InpaintSpec:
    """The card's inpainting spec; a card of another task here is a wiring bug."""
    spec = built.card.spec
    if not isinstance(spec, InpaintSpec):
        raise Internal("bad_card", f"{built.name} is a {spec.task} model, not an inpainting one")
    return spec


class InpaintPipeline:
    """Runs inpainting models on the hole's region, through the tiled image pipeline."""

    def __init__(self, *, image_to_image: ImageToImagePipeline) -> None:
        self.image_to_image = image_to_image
        self.settings = image_to_image.settings

    def model(self, name: str | None, version: int | None = None) -> BuiltCard:
        """The card to run (the default model when ``name`` is None)."""
        return self.image_to_image.model(name, version)

    async def run(
        self,
        *,
        data: bytes,
        mask: bytes,
        model: str | None,
        version: int | None = None,
        tile: int | None = None,
        fmt: OutputFormat = "png",
    ) -> ImageResult:
        """Fill the hole ``mask`` marks in the image ``data``.

        Args:
            data: the uploaded image.
            mask: the uploaded mask (white = fill), the image's size.
            model: an inpainting model; the default when None.
            version: the model version; its default (promoted) version when None.
            tile: window size in input pixels; the card's when None, 0 for the whole region.
            fmt: output format.
        """
        built = self.model(model, version)
        spec = inpaint_spec(built)
        limit = self.settings.max_input_pixels
        image = await asyncio.to_thread(decode_image, data, max_pixels=limit)
        decoded_mask = await asyncio.to_thread(decode_image, mask, max_pixels=limit)
        hole = read_mask(decoded_mask, image.height, image.width)
        check_encodable(image.width, image.height, fmt)
        region = hole_region(hole, context=spec.context, multiple=built.card.size_multiple)
        pipeline = self.image_to_image
        plan = pipeline.plan(built, region.height, region.width, tile, enforce_budget=False)
        gflop = estimate_gflop(built, plan.tiles)
        seconds = gflop / pipeline.estimator.rate(built.name)
        if seconds > self.settings.sync_budget_s:
            raise TooLarge(
                "compute_budget_exceeded",
                f"filling this hole with {built.name} runs a {region.width}x{region.height} "
                f"region (the hole's box and {spec.context} px of context each side): about "
                f"{gflop:.0f} GFLOP, about {seconds:.0f} s on this server, over the synchronous "
                f"budget of {self.settings.sync_budget_s:.0f} s; send a smaller image or hole "
                "(no batch job takes masks)",
            )
        started = time.perf_counter()
        rgb = region.of(image.rgb)
        holes = region.of(hole).astype(np.float32)[None]
        chw = np.concatenate([normalise(rgb, built.card, white=1.0), holes])
        out = await pipeline.run_array(built, pad_image(chw, plan.padding), plan.tiles)
        pipeline.estimator.observe(built.name, gflop, time.perf_counter() - started)
        fill = to_unit_range(crop_output(out, plan.padding, 1), spec.output_range)
        completed = image.rgb.copy()
        inside = region.of(hole)
        region.of(completed)[inside] = np.clip(fill.transpose(1, 2, 0)[inside], 0.0, 1.0)
        encoded = await asyncio.to_thread(
            encode_image,
            completed,
            alpha=image.alpha,
            grayscale=image.grayscale,
            bit_depth=image.bit_depth,
            fmt=fmt,
        )
        PIXELS_OUT.labels(model=built.name).inc(image.width * image.height)
        return ImageResult(
            data=encoded,
            content_type=CONTENT_TYPES[fmt],
            model=built.name,
            version=built.version,
            scale=1,
            tiles=plan.tiles.count,
            width=image.width,
            height=image.height,
        )
