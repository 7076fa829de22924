"""``gantry models build | list | publish | interpolate | promote``: the versioned model
repository."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gantry.cli.console import console, progress
from gantry.core.errors import GantryError
from gantry.core.repository import ModelRepository
from gantry.core.settings import Settings, get_settings
from gantry.serving.triton import TritonControl

if TYPE_CHECKING:
    from trainer.export.repository import BuildOptions

app = typer.Typer(help="Build, publish and promote model versions.", no_args_is_help=True)

WeightsOption = Annotated[
    Path | None, typer.Option(help="an official checkpoint (.pth) instead of packaged weights")
]
ProfileOption = Annotated[str, typer.Option(help="cpu or gpu config.pbtxt")]
TensorRTOption = Annotated[bool, typer.Option(help="also build TensorRT plans (GPU hosts)")]
RepositoryOption = Annotated[Path | None, typer.Option(help="model repository directory")]


def _options(
    settings: Settings,
    *,
    repository: Path | None,
    weights: Path | None,
    profile: str,
    tensorrt: bool,
    force: bool = False,
) -> BuildOptions:
    from trainer.export.repository import BuildOptions

    if profile not in ("cpu", "gpu"):
        raise typer.BadParameter("profile must be cpu or gpu")
    return BuildOptions(
        repository=repository or settings.model_repository,
        data_dir=settings.data_dir,
        profile="gpu" if profile == "gpu" else "cpu",
        weights=weights,
        tensorrt=tensorrt,
        intra_op_threads=settings.ort_intra_op_threads,
        force=force,
    )


@app.command("build")
def build(
    names: Annotated[list[str] | None, typer.Argument(help="models to build; all if none")] = None,
    weights: WeightsOption = None,
    profile: ProfileOption = "cpu",
    tensorrt: TensorRTOption = False,
    repository: RepositoryOption = None,
    force: Annotated[bool, typer.Option(help="rebuild models that are up to date")] = False,
) -> None:
    """Build version 1 of each model: import weights, export ONNX, check it against PyTorch,
    write config.pbtxt and the card. Models built from the same card, weights and code are
    skipped."""
    from trainer.catalog import CARDS
    from trainer.export.repository import build_repository

    settings = get_settings()
    options = _options(
        settings,
        repository=repository,
        weights=weights,
        profile=profile,
        tensorrt=tensorrt,
        force=force,
    )
    selected = names or CARDS.names()
    table = Table("model", "version", "params", "MFLOP/input px", "parity max|err|")
    with progress() as bar:
        task = bar.add_task("building", total=len(selected))
        for name in selected:

            def step(model: str, message: str) -> None:
                bar.update(task, description=f"{model}: {message}")

            (built,) = build_repository([name], options, step)
            bar.advance(task)
            table.add_row(
                name,
                str(built.version),
                f"{built.build.parameters / 1e6:.2f}M",
                f"{built.build.gflops_per_input_pixel * 1e3:.3f}",
                f"{built.build.parity_max_abs_err:.2e}",
            )
        bar.update(task, description="done")
    console.print(table)
    console.print(f"model repository: {options.repository}")


@app.command("list")
def list_models(repository: RepositoryOption = None) -> None:
    """The models in the repository, with their versions and the default one."""
    repo = ModelRepository(repository or get_settings().model_repository)
    table = Table("name", "task", "versions", "default", "licence", "built")
    for name, built in repo.default_cards().items():
        versions = ", ".join(str(v) for v in repo.versions(name))
        card = built.card
        table.add_row(
            name, card.task, versions, str(built.version), card.license, built.build.built_at
        )
    console.print(table)


def load_into_triton(settings: Settings, name: str) -> None:
    """Ask the running Triton to (re)load ``name``; say so when none runs."""
    control = TritonControl(settings.triton_http_url)
    if not control.is_live():
        console.print(
            f"no Triton answers on {settings.triton_http_url}: the version is in the "
            "repository and loads with the next `gantry up`"
        )
        return
    with console.status(f"loading {name} into Triton…"):
        control.load(name)
    states = [
        f"v{e['version']} {e.get('state', '?')}"
        for e in control.index()
        if e.get("name") == name and e.get("version")
    ]
    console.print(f"[green]Triton serves {name}[/]: {', '.join(sorted(states))}")


def serve_published(
    settings: Settings, repository: Path, name: str, version: int, *, promote: bool
) -> None:
    """Load a just-published version into the running Triton (exit 1 if it cannot), promote
    it if asked, and say which version is the default."""
    repo = ModelRepository(repository)
    try:
        load_into_triton(settings, name)
    except GantryError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(1) from error
    if promote:
        repo.promote(name, version)
    console.print(f"default version of {name}: {repo.default_version(name)}")


@app.command("publish")
def publish(
    name: Annotated[str, typer.Argument(help="the model to publish a new version of")],
    weights: WeightsOption = None,
    profile: ProfileOption = "cpu",
    tensorrt: TensorRTOption = False,
    repository: RepositoryOption = None,
    promote: Annotated[bool, typer.Option(help="also make it the default version")] = False,
) -> None:
    """Build the next version of a model through the parity gate and load it into the
    running Triton without a restart; the gateway and workers see it at once."""
    from trainer.export.repository import publish_version

    settings = get_settings()
    options = _options(
        settings, repository=repository, weights=weights, profile=profile, tensorrt=tensorrt
    )
    with console.status(f"building the next version of {name}…") as status:
        built = publish_version(name, options, lambda m: status.update(f"{name}: {m}"))
    console.print(
        f"[green]{name} version {built.version}[/] built "
        f"(parity max |err| {built.build.parity_max_abs_err:.2e})"
    )
    serve_published(settings, options.repository, name, built.version, promote=promote)


@app.command("interpolate")
def interpolate(
    a: Annotated[str, typer.Argument(help="run name or MODEL[:VERSION]: weight alpha")],
    b: Annotated[str, typer.Argument(help="run name or MODEL[:VERSION]: weight 1 - alpha")],
    name: Annotated[str, typer.Option(help="the model the blend is published as")],
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="the weight of A")] = 0.8,
    profile: ProfileOption = "cpu",
    tensorrt: TensorRTOption = False,
    repository: RepositoryOption = None,
    promote: Annotated[bool, typer.Option(help="also make it the default version")] = False,
) -> None:
    """Network interpolation (ESRGAN): publish theta = alpha * theta_A + (1 - alpha) *
    theta_B as the next version of NAME (a new model if none has the name), through the
    parity gate, and load it into the running Triton. A is usually the PSNR-oriented
    generator and B the GAN one (alpha 1: A exactly, 0: B exactly); both must be the same
    architecture with the same shapes. A and B are run names (folders of the checkpoint
    directory) or published models, NAME or NAME:VERSION."""
    from trainer.interpolation import publish_interpolation

    settings = get_settings()
    options = _options(
        settings, repository=repository, weights=None, profile=profile, tensorrt=tensorrt
    )
    try:
        with console.status(f"interpolating into {name}…") as status:
            built = publish_interpolation(
                a,
                b,
                alpha=alpha,
                name=name,
                options=options,
                checkpoint_dir=settings.checkpoint_dir,
                weights_dir=settings.state_dir / "interpolations",
                step=lambda m: status.update(f"{name}: {m}"),
            )
    except GantryError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(2) from error
    console.print(
        f"[green]{name} version {built.version}[/] = {alpha:g} x {a} + {1 - alpha:g} x {b} "
        f"(parity max |err| {built.build.parity_max_abs_err:.2e})"
    )
    serve_published(settings, options.repository, name, built.version, promote=promote)


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="the model")],
    version: Annotated[int, typer.Argument(help="the version requests get by default")],
    repository: RepositoryOption = None,
) -> None:
    """Make a built version the default of its model (a rollback is a promote)."""
    repo = ModelRepository(repository or get_settings().model_repository)
    try:
        repo.promote(name, version)
    except FileNotFoundError as exc:
        versions = ", ".join(str(v) for v in repo.versions(name)) or "none"
        console.print(f"[red]{exc}[/] (versions: {versions})")
        raise typer.Exit(1) from exc
    console.print(f"[green]{name}[/]: version {version} is the default")
