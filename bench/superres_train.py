"""SRGAN and ESRGAN trained here, and ESRGAN's network interpolation across alpha.

For each family it trains the PSNR-oriented stage (``srresnet-photos``, ``esrgan-photos-
psnr``) and then the GAN stage initialised from it (``srgan-photos``, ``esrgan-photos``) in
one fresh checkpoint folder, then blends the two generators, θ = α · θ_PSNR + (1 − α) ·
θ_GAN for α in 0, 0.2, ..., 1 (:mod:`trainer.interpolation`), and measures every network on
the 33 held-aside photos' fixed bicubic x4 pairs (128 px HR, 32 px LR): PSNR and SSIM on Y
with a 4-px shave, beside the gradient-energy sharpness of the output over that of the HR
truth (1 = the truth's; :mod:`trainer.evaluation.superres`), and the same figures of
bicubic upscaling.

Steps are cut from the shipped configs' to fit one CPU (the override is in the table);
the wall-clock limit is lifted so a busy machine gives the same figures, later.

Run: ``.venv/bin/python -m bench.superres_train [srgan|esrgan ...] [--runs DIR]`` (writes
bench/results/train-superres.md and each GAN run's last sample grid).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import torch

from bench.stack import REPO, write_result
from gantry.core.settings import get_settings

ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# family → (PSNR config, its steps, GAN config, its steps)
FAMILIES: dict[str, tuple[str, int, str, int]] = {
    "srgan": ("srresnet-photos", 400, "srgan-photos", 200),
    "esrgan": ("esrgan-photos-psnr", 250, "esrgan-photos", 150),
}
FIGURES = ("val_psnr", "val_ssim", "val_sharpness")
HEADER = (
    "33 held-aside natural photos, bicubic x4 pairs (128 px HR, 32 px LR); PSNR / SSIM on Y "
    "with a 4-px shave; sharpness: gradient energy of the output over the HR truth's (1 = "
    "the truth's; above 1: more high-frequency energy than the photo has). Interpolation: "
    "theta = alpha * theta_PSNR + (1 - alpha) * theta_GAN. Steps cut from the configs' "
    "(FAMILIES in bench/superres_train.py); seconds on a shared, loaded 2-core machine."
)


def _row(label: str, steps: str, seconds: str, figures: dict[str, float], suffix: str = "") -> str:
    values = " | ".join(f"{figures[f'{name}{suffix}']:.4f}" for name in FIGURES)
    return f"| {label} | {steps} | {seconds} | {values} |"


def measure(family: str, checkpoint_dir: Path) -> list[str]:
    """Train (or resume, or reuse) ``family``'s two runs in ``checkpoint_dir`` and measure
    them and their interpolations; the table rows."""
    from trainer import runs
    from trainer.interpolation import interpolate_state_dicts
    from trainer.loop import GENERATOR_FILE
    from trainer.recipes import RECIPES

    settings = get_settings()
    run_settings = settings.model_copy(update={"checkpoint_dir": checkpoint_dir})
    psnr_name, psnr_steps, gan_name, gan_steps = FAMILIES[family]
    done = {}
    for name, steps in ((psnr_name, psnr_steps), (gan_name, gan_steps)):
        overrides = {"time_limit_s": None, "steps": steps}
        spec = runs.RunSpec(config_name=name, overrides=overrides, run_name=name)
        # A finished run in the folder is only evaluated again (the loop resumes at its end).
        done[name] = (spec, runs.run(spec, run_settings))
    gan_spec, gan = done[gan_name]
    psnr = done[psnr_name][1]
    lines = [_row("bicubic", "", "", gan.metrics, "_bicubic")]
    lines.append(_row(f"{psnr_name} at init", "0", "", psnr.metrics_at_init))
    for name, (_, result) in done.items():
        lines.append(_row(name, str(result.step), f"{result.seconds:.0f}", result.metrics))
    # The interpolations, measured by the GAN recipe's own held-aside evaluation.
    config = gan_spec.config().model_copy(update={"init_weights": None})
    recipe = RECIPES.get(config.recipe)(
        config, data_dir=settings.data_dir, device=torch.device("cpu")
    )
    recipe.build()
    generator = recipe.networks["generator"]
    theta_psnr = torch.load(Path(psnr.run_dir) / GENERATOR_FILE, weights_only=True)
    theta_gan = torch.load(Path(gan.run_dir) / GENERATOR_FILE, weights_only=True)
    for alpha in ALPHAS:
        generator.load_state_dict(interpolate_state_dicts(theta_psnr, theta_gan, alpha))
        generator.eval()
        figures = recipe.evaluate(generator)
        lines.append(_row(f"{family} α={alpha:.1f} · PSNR + (1−α) · GAN", "", "", figures))
    results = REPO / "bench" / "results"
    shutil.copy(Path(gan.run_dir) / gan.artifacts["samples"], results / f"train-{gan_name}.png")
    return lines


def main(families: list[str] | None = None, runs_dir: Path | None = None) -> None:
    """Measure ``families`` (default: both) with runs in ``runs_dir`` (kept: a second call
    reuses its finished runs) or in a temporary folder."""
    lines = [
        HEADER,
        "",
        "| network | steps | seconds | PSNR (Y, dB) | SSIM (Y) | sharpness (1 = HR) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="gantry-bench-superres-") as home:
        for family in families or list(FAMILIES):
            lines += measure(family, runs_dir or Path(home))
            # Each family's rows as soon as they are measured.
            write_result("train-superres", "\n".join(lines))


if __name__ == "__main__":
    args = sys.argv[1:]
    kept = None
    if "--runs" in args:
        at = args.index("--runs")
        kept = Path(args[at + 1])
        args = args[:at] + args[at + 2 :]
    main(args, kept)
