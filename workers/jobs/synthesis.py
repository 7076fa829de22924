"""``synthesis``: a label map to an image with a pix2pixHD generator (see
:mod:`gantry.serving.synthesis`); each step is a progress update and a cancel point."""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

from gantry.core.files import atomic_write
from gantry.serving.pipelines import Pipelines
from gantry.serving.synthesis import SynthesisResult, feature_table
from workers.inputs import input_file
from workers.params import SynthesisParams
from workers.runner import JobContext


def run(ctx: JobContext) -> dict[str, Any]:
    """Synthesise one image; the result is a PNG."""
    params = SynthesisParams.model_validate(ctx.params)
    settings = ctx.settings
    started = time.perf_counter()
    result = asyncio.run(_synthesise(ctx, params))
    name = f"{ctx.job.id}.png"
    atomic_write(settings.results_dir / name, result.png)
    return {
        "file": name,
        "content_type": "image/png",
        "model": result.model,
        "version": result.version,
        "width": result.width,
        "height": result.height,
        "seconds": round(time.perf_counter() - started, 3),
        # ru_maxrss is in KiB on Linux: the worker process's peak, inputs and output included.
        "worker_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


async def _synthesise(ctx: JobContext, params: SynthesisParams) -> SynthesisResult:
    settings = ctx.settings
    pipelines = Pipelines(settings)
    try:
        synthesis = pipelines.synthesis
        built = synthesis.model(params.model, params.version)
        label_path = input_file(settings, params.label_map)
        instance = None
        if params.instance_map is not None:
            inst_path = input_file(settings, params.instance_map)
            instance = (inst_path.name, inst_path.read_bytes())
        return await synthesis.run(
            built=built,
            label_map=(label_path.name, label_path.read_bytes()),
            instance_map=instance,
            features=feature_table(params.features),
            width=params.width,
            height=params.height,
            stage=lambda fraction, what: ctx.progress(fraction, what, force=True),
        )
    finally:
        await pipelines.close()
