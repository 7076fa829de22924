"""Network interpolation (ESRGAN, Wang et al. 2018, section 3.4): blend two generators.

ESRGAN trains a PSNR-oriented network G_PSNR, fine-tunes it into a GAN network G_GAN, and
interpolates all their parameters: θ_INTERP = (1 − α) θ_PSNR + α θ_GAN. Here the blend is
written from the first network's side::

    θ = α · θ_A + (1 − α) · θ_B

so ``alpha = 1`` is A exactly and ``alpha = 0`` is B exactly; with A the PSNR-oriented
network and B the GAN one, a high α (0.8) is mostly PSNR with some of the GAN's texture.
The two must be the same architecture with the same tensor names and shapes (the GAN
network is a fine-tune of the PSNR one, so every tensor has a partner). Floating-point
tensors are blended, including batch-norm running statistics (a blend of two networks'
statistics is what the blended weights need, to first order); integer buffers (BN's
``num_batches_tracked``) are taken from A.

A side of a blend is a training run (its ``generator.pth`` and the architecture in its
``result.json``) or a published model version (the weights file its build record names,
else its card's packaged weights): :func:`resolve_generator`.

:func:`publish_interpolation` publishes a blend as the next version of a model, through the
export parity gate every published version passes (:func:`trainer.export.repository.
publish_card`). The model's card is, in this order: the registered card of that name (its
architecture must be the blend's), the card of the model's latest published version, A's
card renamed (A a model), or :func:`trainer.catalog.superres.trained_superres_card` (A a
run of an SR recipe; the scale is measured on the network). The blended weights are kept
beside the state directory (``interpolations/<name>-v<version>.pth``): the build record
names them, so the version can be rebuilt or blended again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from gantry.core.cards import BuiltCard, ModelCard, WeightsSpec
from gantry.core.errors import InvalidInput, NotFound
from gantry.core.repository import ModelRepository
from trainer.archs import build_network
from trainer.export.repository import BuildOptions, Step, publish_card
from trainer.loop import GENERATOR_FILE, RESULT_FILE

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Generator:
    """One side of a blend: its weights, its architecture and where they came from."""

    label: str
    architecture: str
    state: StateDict
    arch_kwargs: dict[str, object]
    card: ModelCard | None = None  # a published model's card; None for a run


def interpolate_state_dicts(a: StateDict, b: StateDict, alpha: float) -> StateDict:
    """α · a + (1 − α) · b, tensor by tensor (see the module docstring).

    Raises:
        InvalidInput: ``alpha`` outside [0, 1], or the two differ in names or shapes.
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInput("invalid_alpha", f"alpha must be in [0, 1], got {alpha}")
    if a.keys() != b.keys():
        only_a = sorted(a.keys() - b.keys())[:3]
        only_b = sorted(b.keys() - a.keys())[:3]
        raise InvalidInput(
            "incompatible_models",
            f"the two generators have different parameters (only in A: {only_a}, "
            f"only in B: {only_b})",
        )
    out: StateDict = {}
    for key, ta in a.items():
        tb = b[key]
        if ta.shape != tb.shape:
            raise InvalidInput(
                "incompatible_models",
                f"{key} is {tuple(ta.shape)} in A and {tuple(tb.shape)} in B",
            )
        if ta.is_floating_point():
            out[key] = alpha * ta + (1.0 - alpha) * tb.to(ta.dtype)
        else:
            out[key] = ta.clone()
    return out


def _from_run(run_dir: Path, label: str) -> Generator:
    result = json.loads((run_dir / RESULT_FILE).read_text())
    state: StateDict = torch.load(run_dir / GENERATOR_FILE, map_location="cpu", weights_only=True)
    return Generator(label, str(result["generator_architecture"]), state, {})


def _from_model(repository: Path, name: str, version: int | None, label: str) -> Generator:
    from trainer.export.repository import load_model

    repo = ModelRepository(repository)
    if not repo.versions(name):
        raise NotFound("unknown_model", f"no run or model named {name}")
    chosen = version if version is not None else repo.default_version(name)
    if chosen not in repo.versions(name):
        versions = ", ".join(str(v) for v in repo.versions(name))
        raise NotFound("unknown_version", f"{name} has no version {version} (it has {versions})")
    assert chosen is not None
    built = repo.read(name, chosen)
    weights = Path(built.build.weights_file)
    model = load_model(built.card, weights if weights.is_file() else None)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Generator(label, built.card.architecture, state, built.card.arch_kwargs, built.card)


def resolve_generator(reference: str, *, checkpoint_dir: Path, repository: Path) -> Generator:
    """A run name (a folder under ``checkpoint_dir`` with a ``generator.pth``) or a published
    model ``NAME`` / ``NAME:VERSION`` (its default version when none is given).

    Raises:
        NotFound: neither a finished run nor a model of the repository.
    """
    run_dir = checkpoint_dir / reference
    if (run_dir / GENERATOR_FILE).is_file() and (run_dir / RESULT_FILE).is_file():
        return _from_run(run_dir, f"run {reference}")
    name, _, version = reference.partition(":")
    if version and not version.isdigit():
        raise InvalidInput("invalid_reference", f"{reference}: a version is a number")
    return _from_model(repository, name, int(version) if version else None, f"model {reference}")


def interpolate(a: Generator, b: Generator, alpha: float) -> StateDict:
    """The blend of two generators, refused unless they are the same architecture.

    Raises:
        InvalidInput: different architectures (or arguments), names or shapes, or alpha.
    """
    if (a.architecture, a.arch_kwargs) != (b.architecture, b.arch_kwargs):
        raise InvalidInput(
            "incompatible_models",
            f"{a.label} is a {a.architecture} and {b.label} a {b.architecture}: only "
            "generators of the same architecture interpolate",
        )
    return interpolate_state_dicts(a.state, b.state, alpha)


def measured_scale(architecture: str, arch_kwargs: dict[str, object]) -> int:
    """The upscale factor of ``architecture``, measured on a 16 px input.

    Raises:
        InvalidInput: the network does not upscale by a whole factor of 2 or more.
    """
    network = build_network(architecture, **arch_kwargs).eval()
    with torch.no_grad():
        out = network(torch.zeros(1, 3, 16, 16))
    scale = out.shape[-1] // 16
    if out.shape[-1] % 16 or scale < 2:
        raise InvalidInput(
            "not_publishable",
            f"{architecture} is not a super-resolution generator: publish its blend as a "
            "version of a model that has a card",
        )
    return scale


def interpolation_card(
    name: str, a: Generator, b: Generator, alpha: float, repository: ModelRepository
) -> ModelCard:
    """The card the blend is published under (see the module docstring for the order).

    Raises:
        InvalidInput: the registered card of ``name`` serves another architecture.
    """
    from trainer.catalog import CARDS, card

    blend = f"{alpha:g} x {a.label} + {1 - alpha:g} x {b.label}"
    if name in CARDS.names():
        registered = card(name)
        if (registered.architecture, registered.arch_kwargs) != (a.architecture, a.arch_kwargs):
            raise InvalidInput(
                "incompatible_models",
                f"{name} serves {registered.architecture}; the blend is a {a.architecture}",
            )
        return registered
    versions = repository.versions(name)
    if versions:
        published = repository.read(name, versions[-1]).card
        if (published.architecture, published.arch_kwargs) != (a.architecture, a.arch_kwargs):
            raise InvalidInput(
                "incompatible_models",
                f"{name} serves {published.architecture}; the blend is a {a.architecture}",
            )
        return published
    description = f"Network interpolation (ESRGAN): {blend}."
    source = f"gantry models interpolate: {blend}"
    if a.card is not None:
        weights = WeightsSpec(
            importer="training_run",
            source=source,
            license=a.card.weights.license,
            upstream=a.card.weights.upstream,
            research_only=a.card.weights.research_only
            or (b.card is None or b.card.weights.research_only),
        )
        return a.card.model_copy(
            update={"name": name, "description": description, "default": False, "weights": weights}
        )
    from trainer.catalog.superres import trained_superres_card

    scale = measured_scale(a.architecture, a.arch_kwargs)
    return trained_superres_card(
        name, a.architecture, scale=scale, description=description, source=source
    )


def publish_interpolation(
    a_reference: str,
    b_reference: str,
    *,
    alpha: float,
    name: str,
    options: BuildOptions,
    checkpoint_dir: Path,
    weights_dir: Path,
    step: Step = lambda _: None,
) -> BuiltCard:
    """Blend A and B (θ = α · θ_A + (1 − α) · θ_B) and publish it as the next version of
    ``name``, through the parity gate. The caller asks Triton to load it.

    Raises:
        NotFound: A or B is neither a finished run nor a published model.
        InvalidInput: different architectures or shapes, alpha outside [0, 1], or no card.
    """
    step("reading the two generators")
    a = resolve_generator(a_reference, checkpoint_dir=checkpoint_dir, repository=options.repository)
    b = resolve_generator(b_reference, checkpoint_dir=checkpoint_dir, repository=options.repository)
    blended = interpolate(a, b, alpha)
    repository = ModelRepository(options.repository)
    model_card = interpolation_card(name, a, b, alpha, repository)
    version = repository.next_version(name)
    weights = weights_dir / f"{name}-v{version}.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blended, weights)
    run = f"interpolation {alpha:g} x {a_reference} + {1 - alpha:g} x {b_reference}"
    built_options = BuildOptions(
        repository=options.repository,
        data_dir=options.data_dir,
        profile=options.profile,
        weights=weights,
        tensorrt=options.tensorrt,
        intra_op_threads=options.intra_op_threads,
        training_run=run,
    )
    return publish_card(model_card, built_options, step)
