"""Face editing: attribute editors trained by ``trainer/recipes`` on CelebA (research only)."""

from __future__ import annotations

from gantry.core.cards import FaceEditSpec, ModelCard, TensorSpec, WeightsSpec
from gantry.core.training import StarGANConfig, load_train_config
from trainer.catalog import CARDS


def celeba_license(upstream: str) -> str:
    """The terms of a model trained here on CelebA, with ``upstream``'s architecture."""
    return (
        "research only: trained on CelebA (non-commercial research use); architecture after "
        + upstream
    )


@CARDS.register("stargan-celeba")
def stargan_celeba() -> ModelCard:
    """StarGAN G with D's attribute classifier, from the shipped stargan-celeba config."""
    config = load_train_config("stargan-celeba")
    assert isinstance(config, StarGANConfig)
    side, c = config.data.size, len(config.attributes)
    hair = tuple(name for name in config.hair_colours if name in config.attributes)
    return ModelCard(
        name="stargan-celeba",
        architecture=f"{config.generator}_editor",
        arch_kwargs={"c_dim": c, "image_size": side},
        description=f"StarGAN (Choi et al. 2018) face attribute editor at {side}x{side}: "
        f"{', '.join(config.attributes)}; attributes a request does not name are kept as "
        "D's classifier reads them. Version 1 is the short run `gantry models build` trains; "
        "`gantry train stargan-celeba --publish` trains the full config (about 13 min on a "
        "CPU) and publishes the next version.",
        inputs=(
            TensorSpec(name="image", dims=(3, side, side)),
            TensorSpec(name="attributes", dims=(c,)),
        ),
        outputs=(TensorSpec(name="edited", dims=(3, side, side)),),
        value_range=(-1.0, 1.0),
        min_input_size=side,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="training_run",
            source="trained by `gantry models build` (config stargan-celeba, its build_steps) "
            "on ../shared/data/train/celeba_attr_subset; or a run's generator.pth",
            license=celeba_license("yunjey/stargan (MIT)"),
            upstream="yunjey/stargan (G and D keys, under generator. and discriminator.)",
            research_only=True,
        ),
        spec=FaceEditSpec(
            conditioning="attributes",
            attributes=config.attributes,
            exclusive_groups=(hair,) if len(hair) > 1 else (),
        ),
    )
