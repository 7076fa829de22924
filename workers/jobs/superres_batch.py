"""``superres_batch``: many images through the same pipeline as POST /v1/superres."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any

from gantry.core.errors import GantryError, InvalidInput
from gantry.core.files import atomic_write
from gantry.serving.image_to_image import ImageToImagePipeline
from gantry.serving.pipelines import Pipelines
from workers.inputs import expand_images, input_file
from workers.params import SuperresBatchParams
from workers.runner import JobContext

# A batch runs any tiled image-to-image model: super-resolution by default.
_TASKS = ("superres", "image_to_image")


def run(ctx: JobContext) -> dict[str, Any]:
    """Upscale every image of the job's inputs; the result is one zip."""
    params = SuperresBatchParams.model_validate(ctx.params)
    settings = ctx.settings
    images: list[tuple[str, bytes]] = []
    for input_id in params.inputs:
        images += expand_images(input_file(settings, input_id))
    if not images:
        raise InvalidInput("no_images", "the inputs hold no PNG, JPEG, WebP, BMP or TIFF")
    if len(images) > settings.max_batch_images:
        raise InvalidInput(
            "too_many_images", f"{len(images)} images; the limit is {settings.max_batch_images}"
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
    pipelines = Pipelines(ctx.settings)
    outputs = []
    total = len(images)
    try:
        pipeline = pipelines.superres
        if params.model is not None:  # a translation model runs through its own task's pipeline
            chosen = pipelines.for_task(
                pipelines.catalog.resolve(params.model, task=_TASKS).card.task
            )
            assert isinstance(chosen, ImageToImagePipeline)
            pipeline = chosen
        for index, (name, data) in enumerate(images):

            def on_tile(done: int, tiles: int, i: int = index) -> None:
                ctx.progress(
                    (i + done / tiles) / total, f"image {i + 1}/{total}: tile {done}/{tiles}"
                )

            try:
                result = await pipeline.run(
                    data=data,
                    model=params.model,
                    version=params.version,
                    tile=params.tile,
                    fmt=params.format,
                    enforce_budget=False,
                    on_tile=on_tile,
                )
            except GantryError as error:
                if error.transient:
                    raise
                raise type(error)(error.code, f"{name}: {error.message}") from error
            out_name = f"{Path(name).stem}_x{result.scale}.{params.format}"
            info = {
                "output": out_name,
                "width": result.width,
                "height": result.height,
                "model": result.model,
                "version": result.version,
                "scale": result.scale,
            }
            outputs.append((out_name, result.data, info))
            ctx.progress((index + 1) / total, f"{index + 1}/{total} images", force=True)
    finally:
        await pipelines.close()
    return outputs
