"""``synthesis``: a label map to an image with a pix2pixHD generator served by Triton.

Steps (each one a progress update and a cancel point): decode the label and instance maps,
resize them (nearest) to the output size, build the generator input (one-hot classes,
instance boundary, per-instance features), one Triton call, encode PNG. Peak memory is
bounded by the output size, which the parameters cap at 4096 x 4096: the generator input is
(classes + 1 + features) x H x W float32 (16 channels: 134 MB at 2048 x 1024) plus the RGB
output; the network's own activations live in Triton.
"""

from __future__ import annotations

import asyncio
import io
import resource
import time
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from gantry.cards import BuiltCard
from gantry.labelmaps import cmp_facade_classes, generator_input
from gateway.errors import GantryError
from gateway.services.catalog import ModelCatalog
from gateway.triton import TritonGateway
from workers.inputs import atomic_write, input_file
from workers.jobs.synthesis_params import SynthesisParams
from workers.runner import JobContext


def read_index_map(data: bytes, name: str) -> NDArray[np.int64]:
    """A PNG of integer ids (palette, L or I;16); 422 ``invalid_image`` otherwise."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode not in ("P", "L", "I", "I;16"):
                raise GantryError(
                    422,
                    "invalid_label_map",
                    f"{name}: a label map must be a palette, 8-bit or 16-bit grey PNG of ids, "
                    f"not {image.mode}",
                )
            return np.asarray(image).astype(np.int64)
    except GantryError:
        raise
    except Exception as exc:
        raise GantryError(422, "invalid_image", f"{name}: {exc}") from exc


def _resize_nearest(ids: NDArray[np.int64], height: int, width: int) -> NDArray[np.int64]:
    if ids.shape == (height, width):
        return ids
    resized = cv2.resize(ids.astype(np.int32), (width, height), interpolation=cv2.INTER_NEAREST)
    return resized.astype(np.int64)


def _check_size(built: BuiltCard, params: SynthesisParams) -> None:
    multiple = built.card.size_multiple
    if params.width % multiple or params.height % multiple:
        raise GantryError(
            422,
            "invalid_size",
            f"{built.card.name} needs width and height in multiples of {multiple}",
        )


def run(ctx: JobContext) -> dict[str, Any]:
    """Synthesise one image; the result is a PNG."""
    params = SynthesisParams.model_validate(ctx.params)
    settings = ctx.settings
    started = time.perf_counter()
    built = ModelCatalog(settings.model_repository).require(params.model, task="synthesis")
    card = built.card
    assert card.n_classes is not None
    _check_size(built, params)

    ctx.progress(0.05, "reading the label map", force=True)
    label_path = input_file(settings, params.label_map)
    try:
        classes = cmp_facade_classes(read_index_map(label_path.read_bytes(), label_path.name))
    except ValueError as exc:
        raise GantryError(422, "invalid_label_map", f"{label_path.name}: {exc}") from exc
    classes = _resize_nearest(classes, params.height, params.width)
    instances = None
    if params.instance_map is not None:
        inst_path = input_file(settings, params.instance_map)
        instances = _resize_nearest(
            read_index_map(inst_path.read_bytes(), inst_path.name), params.height, params.width
        )

    ctx.progress(0.15, "building the generator input", force=True)
    features = {int(k): v for k, v in (params.features or {}).items()}
    x = generator_input(
        classes, instances, features, n_classes=card.n_classes, feat_num=card.feat_num
    )[None]

    ctx.progress(0.25, f"synthesising {params.width}x{params.height} in Triton", force=True)
    output = asyncio.run(_infer(ctx, built, x))
    del x

    ctx.progress(0.9, "encoding PNG", force=True)
    rgb = np.clip((output[0].transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise GantryError(500, "encode_failed", "could not encode the synthesised image")
    name = f"{ctx.job.id}.png"
    atomic_write(settings.results_dir / name, bytes(png))
    return {
        "file": name,
        "content_type": "image/png",
        "model": card.name,
        "width": params.width,
        "height": params.height,
        "seconds": round(time.perf_counter() - started, 3),
        # ru_maxrss is in KiB on Linux: the worker process's peak, inputs and output included.
        "worker_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


async def _infer(ctx: JobContext, built: BuiltCard, x: NDArray[np.float32]) -> NDArray[Any]:
    settings = ctx.settings
    triton = TritonGateway(settings.triton_url, timeout_s=settings.triton_timeout_s)
    card = built.card
    try:
        result = await triton.infer(card.name, {card.inputs[0].name: x}, [card.outputs[0].name])
    finally:
        await triton.close()
    return result[card.outputs[0].name]
