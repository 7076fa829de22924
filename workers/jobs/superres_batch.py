"""``superres_batch``: many images through the same tiling path as POST /v1/superres."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gateway.errors import GantryError
from gateway.services.catalog import ModelCatalog
from gateway.services.superres import SuperresService, ThroughputEstimator
from gateway.triton import TritonGateway
from workers.inputs import atomic_write, expand_images, input_file
from workers.kinds import JobParams
from workers.runner import JobContext


class SuperresBatchParams(JobParams):
    """Parameters of a batch super-resolution job."""

    inputs: list[str] = Field(min_length=1, description="input ids from POST /v1/inputs")
    model: str | None = None
    tile: int | None = None
    format: Literal["png", "jpeg", "webp"] = "png"

    def input_ids(self) -> list[str]:
        return list(self.inputs)


def run(ctx: JobContext) -> dict[str, Any]:
    """Upscale every image of the job's inputs; the result is one zip."""
    params = SuperresBatchParams.model_validate(ctx.params)
    settings = ctx.settings
    images: list[tuple[str, bytes]] = []
    for input_id in params.inputs:
        images += expand_images(input_file(settings, input_id))
    if not images:
        raise GantryError(422, "no_images", "the inputs hold no PNG, JPEG, WebP, BMP or TIFF")
    if len(images) > settings.max_batch_images:
        raise GantryError(
            422,
            "too_many_images",
            f"{len(images)} images; the limit is {settings.max_batch_images}",
        )
    ctx.progress(0.0, f"0/{len(images)} images", force=True)
    outputs = asyncio.run(_upscale_all(ctx, params, images))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data, _ in outputs:
            archive.writestr(name, data)
    result_name = f"{ctx.job.id}.zip"
    atomic_write(settings.results_dir / result_name, buffer.getvalue())
    return {
        "file": result_name,
        "content_type": "application/zip",
        "images": [{"name": name, **info} for name, _, info in outputs],
    }


async def _upscale_all(
    ctx: JobContext, params: SuperresBatchParams, images: list[tuple[str, bytes]]
) -> list[tuple[str, bytes, dict[str, Any]]]:
    settings = ctx.settings
    triton = TritonGateway(settings.triton_url, timeout_s=settings.triton_timeout_s)
    service = SuperresService(
        triton=triton,
        catalog=ModelCatalog(settings.model_repository),
        settings=settings,
        estimator=ThroughputEstimator(settings.serving_gflops),
    )
    outputs = []
    total = len(images)
    try:
        for index, (name, data) in enumerate(images):

            def on_tile(done: int, tiles: int, i: int = index) -> None:
                ctx.progress(
                    (i + done / tiles) / total, f"image {i + 1}/{total}: tile {done}/{tiles}"
                )

            try:
                result = await service.upscale(
                    data=data,
                    model=params.model,
                    tile=params.tile,
                    fmt=params.format,
                    enforce_budget=False,
                    on_tile=on_tile,
                )
            except GantryError as error:
                if error.status == 503:
                    raise
                raise GantryError(error.status, error.code, f"{name}: {error.message}") from error
            out_name = f"{Path(name).stem}_x{result.scale}.{params.format}"
            info = {
                "output": out_name,
                "width": result.width,
                "height": result.height,
                "model": result.model,
                "scale": result.scale,
            }
            outputs.append((out_name, result.data, info))
            ctx.progress((index + 1) / total, f"{index + 1}/{total} images", force=True)
    finally:
        await triton.close()
    return outputs
