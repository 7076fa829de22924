"""Super-resolution: decode → tile → Triton in batches → blend → encode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.cards import BuiltCard
from gantry.settings import Settings
from gateway.errors import GantryError
from gateway.imaging import (
    CONTENT_TYPES,
    DecodedImage,
    OutputFormat,
    decode_image,
    encode_image,
    resize_alpha,
)
from gateway.metrics import PIXELS_OUT, TILES
from gateway.services.catalog import ModelCatalog
from gateway.tiling import Blender, TilePlan, crop_window, plan_tiles
from gateway.triton import TritonGateway

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
class UpscaleResult:
    """An encoded upscaled image and how it was made."""

    data: bytes
    content_type: str
    model: str
    scale: int
    tiles: int
    width: int
    height: int


def pre_pad(chw: NDArray[Any], pad: int) -> NDArray[Any]:
    """Mirror-pad a C x H x W image by ``pad`` pixels on every side (contiguous float32)."""
    if pad <= 0:
        return np.ascontiguousarray(chw, dtype=np.float32)
    widths = ((0, 0), (pad, pad), (pad, pad))
    if min(chw.shape[1:]) > 1:
        return np.pad(chw, widths, mode="reflect").astype(np.float32)
    return np.pad(chw, widths, mode="edge").astype(np.float32)


def estimate_gflop(built: BuiltCard, plan: TilePlan) -> float:
    """Compute of one request: every window's pixels times the model's GFLOP per pixel."""
    return built.build.gflops_per_input_pixel * plan.count * plan.window_pixels


def resolve_tile(built: BuiltCard, tile: int | None) -> int:
    """The tile size to use: the card's unless the client asked; validated."""
    if tile is None:
        return built.card.tile_size
    pad = built.card.tile_pad
    if tile != 0 and not (2 * pad + 16 <= tile <= MAX_TILE):
        raise GantryError(
            422,
            "invalid_tile",
            f"tile must be 0 (whole image) or between {2 * pad + 16} and {MAX_TILE} for "
            f"{built.card.name}",
        )
    return tile


class SuperresService:
    """Upscales images with a super-resolution model served by Triton."""

    def __init__(
        self,
        *,
        triton: TritonGateway,
        catalog: ModelCatalog,
        settings: Settings,
        estimator: ThroughputEstimator,
    ) -> None:
        self.triton = triton
        self.catalog = catalog
        self.settings = settings
        self.estimator = estimator

    def plan(
        self,
        built: BuiltCard,
        image: DecodedImage,
        tile: int | None,
        *,
        enforce_budget: bool = True,
    ) -> TilePlan:
        """Check the output size and the compute budget, and lay out the tiles."""
        scale = built.card.scale
        out_pixels = image.width * scale * image.height * scale
        if out_pixels > self.settings.max_output_pixels:
            raise GantryError(
                413,
                "output_too_large",
                f"{image.width}x{image.height} at x{scale} gives {out_pixels} pixels; the limit"
                f" is {self.settings.max_output_pixels}",
            )
        if min(image.width, image.height) < built.card.min_input_size:
            raise GantryError(
                422, "image_too_small", "the image is smaller than the model's minimum"
            )
        pre = built.card.pre_pad
        plan = plan_tiles(
            image.height + 2 * pre,
            image.width + 2 * pre,
            tile=resolve_tile(built, tile),
            pad=built.card.tile_pad,
        )
        gflop = estimate_gflop(built, plan)
        seconds = gflop / self.estimator.rate(built.card.name)
        if enforce_budget and seconds > self.settings.sync_budget_s:
            raise GantryError(
                413,
                "compute_budget_exceeded",
                f"upscaling this {image.width}x{image.height} image with {built.card.name} "
                f"needs about {gflop:.0f} GFLOP, about {seconds:.0f} s on this server, over the "
                f"synchronous budget of {self.settings.sync_budget_s:.0f} s; submit it as a "
                'batch job instead: POST /v1/jobs with {"kind": "superres_batch", ...}',
            )
        return plan

    async def run_tiles(
        self,
        built: BuiltCard,
        chw: NDArray[Any],
        plan: TilePlan,
        on_tile: TileCallback | None = None,
    ) -> NDArray[Any]:
        """Send the windows to Triton in batches and blend the outputs.

        ``on_tile(done, total)`` runs after each batch; a batch job uses it for progress and
        to stop (by raising) at the next tile once cancelled.
        """
        card = built.card
        (inp,), (out,) = card.inputs, card.outputs
        batch = max(1, min(self.settings.tile_batch, card.max_batch_size))
        blender = Blender(plan, chw.shape[0], card.scale)
        origins = list(plan.origins())
        for start in range(0, len(origins), batch):
            group = origins[start : start + batch]
            tiles = np.stack([crop_window(chw, plan, y, x) for y, x in group])
            result = await self.triton.infer(card.name, {inp.name: tiles}, [out.name])
            upscaled = result[out.name]
            for (y, x), tile_out in zip(group, upscaled, strict=True):
                blender.add(y, x, tile_out)
            if on_tile is not None:
                on_tile(start + len(group), len(origins))
        TILES.labels(model=card.name).inc(len(origins))
        return blender.result()

    async def upscale(
        self,
        *,
        data: bytes,
        model: str | None,
        tile: int | None,
        fmt: OutputFormat,
        enforce_budget: bool = True,
        on_tile: TileCallback | None = None,
    ) -> UpscaleResult:
        """Upscale one encoded image.

        Args:
            data: the uploaded file.
            model: a super-resolution model name; the default when None.
            tile: window size in input pixels; the card's when None, 0 for the whole image.
            fmt: output format.
            enforce_budget: refuse work over the synchronous budget (off in batch jobs).
            on_tile: progress callback, see :meth:`run_tiles`.
        """
        name = model or self.settings.default_superres_model
        built = self.catalog.require(name, task="superres")
        image = await asyncio.to_thread(
            decode_image, data, max_pixels=self.settings.max_input_pixels
        )
        plan = self.plan(built, image, tile, enforce_budget=enforce_budget)
        started = time.perf_counter()
        chw = pre_pad(image.rgb.transpose(2, 0, 1), built.card.pre_pad)
        out = await self.run_tiles(built, chw, plan, on_tile)
        self.estimator.observe(name, estimate_gflop(built, plan), time.perf_counter() - started)
        scale = built.card.scale
        crop = built.card.pre_pad * scale
        rgb = out[:, crop : out.shape[1] - crop, crop : out.shape[2] - crop].transpose(1, 2, 0)
        alpha = resize_alpha(image.alpha, scale) if image.alpha is not None else None
        encoded = await asyncio.to_thread(
            encode_image,
            rgb,
            alpha=alpha,
            grayscale=image.grayscale,
            bit_depth=image.bit_depth,
            fmt=fmt,
        )
        PIXELS_OUT.labels(model=name).inc(rgb.shape[0] * rgb.shape[1])
        return UpscaleResult(
            data=encoded,
            content_type=CONTENT_TYPES[fmt],
            model=name,
            scale=scale,
            tiles=plan.count,
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
        )
