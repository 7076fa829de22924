"""``superres_batch``: many images through the same pipeline as POST /v1/superres."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import PurePosixPath
from typing import Any

from gantry.core.errors import GantryError, InvalidInput
from gantry.core.files import atomic_write
from gantry.serving.image_to_image import ImageToImagePipeline, tiled_scale
from gantry.serving.pipelines import Pipelines
from workers.inputs import InputImage, input_images
from workers.params import SUPERRES_BATCH_TASKS, SuperresBatchParams
from workers.runner import JobContext


def output_names(inputs: list[str], scale: int, fmt: str) -> list[str]:
    """``a/photo.jpg`` → ``a/photo_x4.png``, kept unique: a repeat gets ``-2``, ``-3``, ..."""
    taken: set[str] = set()
    names = []
    for name in inputs:
        path = PurePosixPath(name)
        stem = str(path.with_suffix("")) if path.suffix else name
        candidate, n = f"{stem}_x{scale}.{fmt}", 1
        while candidate in taken:
            n += 1
            candidate = f"{stem}-{n}_x{scale}.{fmt}"
        taken.add(candidate)
        names.append(candidate)
    return names


def run(ctx: JobContext) -> dict[str, Any]:
    """Upscale every image of the job's inputs; the result is one zip."""
    params = SuperresBatchParams.model_validate(ctx.params)
    settings = ctx.settings
    images = input_images(settings, params.inputs)
    if not images:
        raise InvalidInput("no_images", "the inputs hold no PNG, JPEG, WebP, BMP or TIFF")
    ctx.progress(0.0, f"0/{len(images)} images", force=True)
    outputs = asyncio.run(_upscale_all(ctx, params, images))
    result_name = f"{ctx.job.id}.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for info, data in outputs:
            archive.writestr(info["output"], data)
    atomic_write(settings.results_dir / result_name, buffer.getvalue())
    return {
        "file": result_name,
        "content_type": "application/zip",
        "images": [info for info, _ in outputs],
    }


async def _upscale_all(
    ctx: JobContext, params: SuperresBatchParams, images: list[InputImage]
) -> list[tuple[dict[str, Any], bytes]]:
    pipelines = Pipelines(ctx.settings)
    outputs = []
    total = len(images)
    try:
        pipeline = pipelines.superres
        if params.model is not None:  # a translation model runs through its own task's pipeline
            task = pipelines.catalog.resolve(params.model, task=SUPERRES_BATCH_TASKS).card.task
            chosen = pipelines.for_task(task)
            assert isinstance(chosen, ImageToImagePipeline)
            pipeline = chosen
        scale = tiled_scale(pipeline.model(params.model, params.version))
        names = output_names([i.name for i in images], scale, params.format)
        for index, (image, out_name) in enumerate(zip(images, names, strict=True)):

            def on_tile(done: int, tiles: int, i: int = index) -> None:
                ctx.progress(
                    (i + done / tiles) / total, f"image {i + 1}/{total}: tile {done}/{tiles}"
                )

            try:
                result = await pipeline.run(
                    data=image.read(),
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
                raise type(error)(error.code, f"{image.name}: {error.message}") from error
            info = {
                "input": image.name,
                "output": out_name,
                "width": result.width,
                "height": result.height,
                "model": result.model,
                "version": result.version,
                "scale": result.scale,
            }
            outputs.append((info, result.data))
            ctx.progress((index + 1) / total, f"{index + 1}/{total} images", force=True)
    finally:
        await pipelines.close()
    return outputs
