"""Face editing: attribute editors and attribute swappers trained by ``trainer/recipes`` on
CelebA (research only). Each card reads its shipped training config, so the attributes, the
face size and the architecture are written once, there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gantry.core.cards import FaceEditSpec, ModelCard, TensorSpec, WeightsSpec
from gantry.core.training import StarGANConfig, load_train_config
from trainer.catalog import CARDS

SHORT_RUN = (
    "Version 1 is the short run `gantry models build` trains (faint edits); "
    "`gantry train {name} --publish` trains the full config and publishes the next version."
)


def celeba_license(upstream: str) -> str:
    """The terms of a model trained here on CelebA, with ``upstream``'s architecture."""
    return (
        "research only: trained on CelebA (non-commercial research use); architecture after "
        + upstream
    )


def attribute_editor_card(
    name: str,
    *,
    architecture: str,
    arch_kwargs: dict[str, Any],
    side: int,
    attributes: Sequence[str],
    hair_colours: Sequence[str],
    description: str,
    upstream: str,
) -> ModelCard:
    """A face_edit card of an attributes model: inputs ``image`` (3, side, side) and
    ``attributes`` (c,), output ``edited``; hair colours among the attributes exclusive."""
    hair = tuple(a for a in hair_colours if a in attributes)
    return ModelCard(
        name=name,
        architecture=architecture,
        arch_kwargs=arch_kwargs,
        description=f"{description} {SHORT_RUN.format(name=name)}",
        inputs=(
            TensorSpec(name="image", dims=(3, side, side)),
            TensorSpec(name="attributes", dims=(len(attributes),)),
        ),
        outputs=(TensorSpec(name="edited", dims=(3, side, side)),),
        value_range=(-1.0, 1.0),
        min_input_size=side,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="training_run",
            source=f"trained by `gantry models build` (config {name}, its build_steps) on "
            "../shared/data/train/celeba_attr_subset; or a run's generator.pth",
            license=celeba_license(upstream),
            upstream=upstream,
            research_only=True,
        ),
        spec=FaceEditSpec(
            conditioning="attributes",
            attributes=tuple(attributes),
            exclusive_groups=(hair,) if len(hair) > 1 else (),
        ),
    )


@CARDS.register("stargan-celeba")
def stargan_celeba() -> ModelCard:
    """StarGAN G with D's attribute classifier, from the shipped stargan-celeba config."""
    config = load_train_config("stargan-celeba")
    assert isinstance(config, StarGANConfig)
    side = config.data.size
    return attribute_editor_card(
        "stargan-celeba",
        architecture=f"{config.generator}_editor",
        arch_kwargs={"c_dim": len(config.attributes), "image_size": side},
        side=side,
        attributes=config.attributes,
        hair_colours=config.hair_colours,
        description=f"StarGAN (Choi et al. 2018) face attribute editor at {side}x{side}: "
        f"{', '.join(config.attributes)}; attributes a request does not name are kept as "
        "D's classifier reads them.",
        upstream="yunjey/stargan (MIT; G and D keys, under generator. and discriminator.)",
    )
