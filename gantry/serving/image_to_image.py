"""The generic image-to-image pipeline: decode → normalise → tile → Triton → blend → encode.

Super-resolution, and the same-size translations and restorations (translate, deblur), are
fully convolutional networks on images: one pipeline serves all of them, driven by the card's
:class:`~gantry.core.cards.TiledImageSpec` (scale, tile, pads, output range). Synthesis
builds its input from a label map and runs :meth:`ImageToImagePipeline.run_array` on it.

Any image size works with any model: the image is mirror-padded by the card's ``pre_pad``,
then at the bottom and right up to the card's ``size_multiple`` (and ``min_input_size``),
and the output is cropped back to the image (times the scale). Every window has the same
size, so one image's tiles batch into one Triton request. Peak memory is the tile batch plus
the output accumulator, never a whole-image activation (with tiles; a card without a
``tile_size`` runs the whole image in one window unless the client asks for tiles).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.core.cards import BuiltCard, TiledImageSpec
from gantry.core.errors import Internal, InvalidInput, TooLarge
from gantry.core.imaging import (
    CONTENT_TYPES,
    OutputFormat,
    check_encodable,
    decode_image,
    encode_image,
    resize_alpha,
)
from gantry.core.preprocess import normalise, to_unit_range
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from gantry.serving.metrics import PIXELS_OUT, TILES
from gantry.serving.tiling import (
    Blender,
    Padding,
    TilePlan,
    crop_output,
    crop_window,
    fit_padding,
    pad_image,
    plan_tiles,
)
from gantry.serving.triton import TritonClient

MAX_TILE = 1024
TileCallback = Callable[[int, int], None]


class ThroughputEstimator:
    """Achieved GFLOP/s per model, learnt from served requests (exponential average).

    Starts from a configured guess; every finished request corrects it, so the compute budget
    reflects the hardware Triton actually runs on.
    """

    def __init__(self, initial_gflops: float, smoothing: float = 0.3) -> None:
        self.initial = initial_gflops
        self.smoothing = smoothing
        self._rates: dict[str, float] = {}

    def rate(self, model: str) -> float:
        return self._rates.get(model, self.initial)

    def observe(self, model: str, gflop: float, seconds: float) -> None:
        if seconds <= 0 or gflop <= 0:
            return
        measured = gflop / seconds
        old = self._rates.get(model)
        self._rates[model] = (
            measured if old is None else (1 - self.smoothing) * old + self.smoothing * measured
        )


@dataclass(frozen=True)
class ImageResult:
    """An encoded output image and how it was made."""

    data: bytes
    content_type: str
    model: str
    version: int
    scale: int
    tiles: int
    width: int
    height: int


def tiled_spec(built: BuiltCard) -> TiledImageSpec:
    """The card's tiling spec; a card of another task here is a wiring bug."""
    spec = built.card.spec
    if not isinstance(spec, TiledImageSpec):
        raise Internal("bad_card", f"{built.name} is a {spec.task} model, not image-to-image")
    return spec


@dataclass(frozen=True)
class ImagePlan:
    """How one image runs: its padding to a size the network takes, and the windows."""

    padding: Padding
    tiles: TilePlan


def network_padding(built: BuiltCard, height: int, width: int) -> Padding:
    """The padding that makes a ``height`` x ``width`` image a valid input of the card's
    network: ``pre_pad`` on every side, then up to ``size_multiple`` and ``min_input_size``."""
    card = built.card
    return fit_padding(
        height,
        width,
        border=tiled_spec(built).pre_pad,
        multiple=card.size_multiple,
        minimum=card.min_input_size,
    )


def estimate_gflop(built: BuiltCard, plan: TilePlan) -> float:
    """Compute of one request: every window's pixels times the model's GFLOP per pixel."""
    return built.build.gflops_per_input_pixel * plan.count * plan.window_pixels


def resolve_tile(built: BuiltCard, tile: int | None) -> int:
    """The tile size to use: the card's unless the client asked; validated.

    A window is a network input, so a tile is a multiple of the card's ``size_multiple`` and
    at least its ``min_input_size`` (and leaves room inside its two pads).
    """
    spec = tiled_spec(built)
    if tile is None:
        return spec.tile_size
    multiple = built.card.size_multiple
    low = max(2 * spec.tile_pad + 16, built.card.min_input_size)
    low = -(-low // multiple) * multiple
    if tile != 0 and not (low <= tile <= MAX_TILE and tile % multiple == 0):
        sizes = f"a multiple of {multiple} " if multiple > 1 else ""
        raise InvalidInput(
            "invalid_tile",
            f"tile must be 0 (whole image) or {sizes}between {low} and {MAX_TILE} for {built.name}",
        )
    return tile


class ImageToImagePipeline:
    """Runs the tiled image-to-image models of some tasks on Triton."""

    def __init__(
        self,
        *,
        triton: TritonClient,
        catalog: ModelCatalog,
        settings: Settings,
        estimator: ThroughputEstimator,
        tasks: Collection[str] = ("image_to_image",),
        default_model: str | None = None,
        batch_kind: str = "a batch job",
    ) -> None:
        self.triton = triton
        self.catalog = catalog
        self.settings = settings
        self.estimator = estimator
        self.tasks = tuple(tasks)
        self.default_model = default_model
        self.batch_kind = batch_kind

    def model(self, name: str | None, version: int | None = None) -> BuiltCard:
        """The card to run (the default model when ``name`` is None)."""
        return self.catalog.resolve_or_default(
            name, self.default_model, task=self.tasks, version=version
        )

    def plan(
        self,
        built: BuiltCard,
        height: int,
        width: int,
        tile: int | None,
        *,
        enforce_budget: bool,
        fmt: OutputFormat = "png",
    ) -> ImagePlan:
        """Check the output size (and that ``fmt`` can hold it) and the compute budget, pad the
        image to a size the network takes and lay out the tiles: everything refusable is
        refused before any inference."""
        spec = tiled_spec(built)
        scale = spec.scale
        out_pixels = width * scale * height * scale
        if out_pixels > self.settings.max_output_pixels:
            raise TooLarge(
                "output_too_large",
                f"{width}x{height} at x{scale} gives {out_pixels} pixels; the limit"
                f" is {self.settings.max_output_pixels}",
            )
        check_encodable(width * scale, height * scale, fmt)
        padding = network_padding(built, height, width)
        plan = plan_tiles(
            padding.padded_height,
            padding.padded_width,
            tile=resolve_tile(built, tile),
            pad=spec.tile_pad,
        )
        gflop = estimate_gflop(built, plan)
        seconds = gflop / self.estimator.rate(built.name)
        if enforce_budget and seconds > self.settings.sync_budget_s:
            raise TooLarge(
                "compute_budget_exceeded",
                f"this {width}x{height} image with {built.name} needs about {gflop:.0f} GFLOP, "
                f"about {seconds:.0f} s on this server, over the synchronous budget of "
                f"{self.settings.sync_budget_s:.0f} s; submit it as a batch job instead: "
                f'POST /v1/jobs with {{"kind": "{self.batch_kind}", "params": {{"inputs": '
                f'[...], "model": "{built.name}"}}}}',
            )
        return ImagePlan(padding, plan)

    async def run_array(
        self,
        built: BuiltCard,
        chw: NDArray[Any],
        plan: TilePlan,
        on_tile: TileCallback | None = None,
    ) -> NDArray[Any]:
        """Send the windows of a network input to Triton in batches and blend the outputs.

        ``on_tile(done, total)`` runs after each batch; a batch job uses it for progress and
        to stop (by raising) at the next tile once cancelled.
        """
        card = built.card
        (inp,), (out,) = card.inputs, card.outputs
        if plan.count == 1:  # one window: no blending, no accumulator
            whole = crop_window(chw, plan, 0, 0)[None]
            result = await self.triton.infer(
                card.name,
                {inp.name: np.ascontiguousarray(whole)},
                [out.name],
                version=built.version,
            )
            TILES.labels(model=card.name).inc(1)
            if on_tile is not None:
                on_tile(1, 1)
            output: NDArray[Any] = result[out.name][0]
            return output
        scale = tiled_scale(built)
        batch = max(1, min(self.settings.tile_batch, card.max_batch_size))
        blender = Blender(plan, int(card.outputs[0].dims[0]), scale)
        origins = list(plan.origins())
        for start in range(0, len(origins), batch):
            group = origins[start : start + batch]
            tiles = np.stack([crop_window(chw, plan, y, x) for y, x in group])
            result = await self.triton.infer(
                card.name, {inp.name: tiles}, [out.name], version=built.version
            )
            for (y, x), tile_out in zip(group, result[out.name], strict=True):
                blender.add(y, x, tile_out)
            if on_tile is not None:
                on_tile(start + len(group), len(origins))
        TILES.labels(model=card.name).inc(len(origins))
        return blender.result()

    async def run(
        self,
        *,
        data: bytes,
        model: str | None,
        version: int | None = None,
        tile: int | None = None,
        fmt: OutputFormat = "png",
        enforce_budget: bool = True,
        on_tile: TileCallback | None = None,
    ) -> ImageResult:
        """Run one encoded image through a model.

        Args:
            data: the uploaded file.
            model: a model of this pipeline's tasks; the default when None.
            version: the model version; its default (promoted) version when None.
            tile: window size in input pixels; the card's when None, 0 for the whole image.
            fmt: output format.
            enforce_budget: refuse work over the synchronous budget (off in batch jobs).
            on_tile: progress callback, see :meth:`run_array`.
        """
        built = self.model(model, version)
        spec = tiled_spec(built)
        image = await asyncio.to_thread(
            decode_image, data, max_pixels=self.settings.max_input_pixels
        )
        plan = self.plan(
            built, image.height, image.width, tile, enforce_budget=enforce_budget, fmt=fmt
        )
        started = time.perf_counter()
        chw = pad_image(normalise(image.rgb, built.card, white=1.0), plan.padding)
        out = await self.run_array(built, chw, plan.tiles, on_tile)
        self.estimator.observe(
            built.name, estimate_gflop(built, plan.tiles), time.perf_counter() - started
        )
        scale = spec.scale
        out = crop_output(out, plan.padding, scale)
        rgb = to_unit_range(out, spec.output_range).transpose(1, 2, 0)
        alpha = resize_alpha(image.alpha, scale) if image.alpha is not None else None
        encoded = await asyncio.to_thread(
            encode_image,
            rgb,
            alpha=alpha,
            grayscale=image.grayscale,
            bit_depth=image.bit_depth,
            fmt=fmt,
        )
        PIXELS_OUT.labels(model=built.name).inc(rgb.shape[0] * rgb.shape[1])
        return ImageResult(
            data=encoded,
            content_type=CONTENT_TYPES[fmt],
            model=built.name,
            version=built.version,
            scale=scale,
            tiles=plan.tiles.count,
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
        )


def tiled_scale(built: BuiltCard) -> int:
    """Output pixels per input pixel of a tiled model (1 for models that keep the size)."""
    spec = built.card.spec
    return spec.scale if isinstance(spec, TiledImageSpec) else 1
