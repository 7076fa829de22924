"""``train``: a training run as a job. Progress is the step; a cancel stops it at the next
step; a redelivered job (its worker died) resumes from the run's last checkpoint, because
the run's folder is named after the job. Only this job kind imports the trainer (and torch),
lazily, so only training workers load them."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantry.core.errors import GantryError
from gantry.serving.triton import TritonControl
from workers.params import TrainParams
from workers.runner import JobContext

if TYPE_CHECKING:
    from trainer.loop import RunResult, StepReport

# Share of the progress bar the steps fill; exporting and publishing take the rest.
_TRAINING_SHARE = 0.9
# What the result zip holds from the run's folder (checkpoints stay there: they are large
# and only a resumed run needs them).
_ZIPPED = ("generator.pth", "metrics.csv", "curves.png", "result.json", "samples", "tensorboard")


def run(ctx: JobContext) -> dict[str, Any]:
    """Train the config (resuming the job's run), optionally publish; result: a zip."""
    from trainer import runs

    params = TrainParams.model_validate(ctx.params)
    settings = ctx.settings
    spec = runs.RunSpec(params.config, params.overrides, run_name=f"job-{ctx.job.id}")
    if params.publish:
        runs.check_publishable(spec.config())

    def on_step(report: StepReport) -> None:
        stage = f"step {report.step}/{report.steps}"
        ctx.progress(_TRAINING_SHARE * report.step / report.steps, stage)

    ctx.progress(0.0, "starting", force=True)
    result = runs.run(spec, settings, on_step)
    record = _record(result)
    if params.publish:
        ctx.progress(_TRAINING_SHARE, "exporting through the parity gate", force=True)
        built = runs.publish(spec, result, settings, lambda m: ctx.progress(0.95, m))
        record["published"] = {
            "model": built.card.name,
            "version": built.build.version,
            "parity_max_abs_err": built.build.parity_max_abs_err,
            "loaded": _load(ctx, built.card.name),
        }
    name = f"{ctx.job.id}.zip"
    _zip(Path(result.run_dir), settings.results_dir / name)
    record.update(file=name, content_type="application/zip")
    return record


def _record(result: RunResult) -> dict[str, Any]:
    return {
        "run": Path(result.run_dir).name,
        "run_dir": result.run_dir,
        "step": result.step,
        "steps": result.steps,
        "stopped": result.stopped,
        "resumed_from": result.resumed_from,
        "seconds": result.seconds,
        "device": result.device,
        "metrics": result.metrics,
        "metrics_at_init": result.metrics_at_init,
        "losses": result.last_losses,
        "artifacts": result.artifacts,
        "notes": result.notes,
    }


def _load(ctx: JobContext, model: str) -> bool:
    """Ask the running Triton to load the new version; False when none answers."""
    control = TritonControl(ctx.settings.triton_http_url)
    if not control.is_live():
        return False
    try:
        control.load(model)
    except GantryError:
        return False
    return True


def _zip(run_dir: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in _ZIPPED:
            path = run_dir / name
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if file.is_file():
                    archive.write(file, str(file.relative_to(run_dir)))
    partial.replace(target)
