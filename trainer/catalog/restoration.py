"""Restoration: deblurring generators trained by ``trainer/recipes`` (DeblurGAN)."""

from __future__ import annotations

from gantry.core.cards import DeblurSpec, ModelCard, TensorSpec, WeightsSpec
from gantry.core.training import DeblurGANConfig, load_train_config
from trainer.catalog import CARDS

_NATURAL_PHOTOS_LICENSE = (
    "research only: trained on ../shared/data/train/natural_photos_sr (BSD68: non-commercial "
    "research and educational use; Sun-Hays 80 and Urban100: research use); architecture "
    "after KupynOrest/DeblurGAN (BSD)"
)


@CARDS.register("deblurgan-photos")
def deblurgan_photos() -> ModelCard:
    """DeblurGAN's residual ResNet generator, from the shipped deblurgan-photos config."""
    config = load_train_config("deblurgan-photos")
    assert isinstance(config, DeblurGANConfig)
    return ModelCard(
        name="deblurgan-photos",
        architecture=config.generator,
        description="DeblurGAN (Kupyn et al. 2018) blind motion deblurring: a small residual "
        "ResNet generator (0.27M parameters) trained here on natural photos blurred by "
        "random camera-shake kernels. Version 1 is the short run `gantry models build` "
        "trains; `gantry train deblurgan-photos --publish` trains the full config and "
        "publishes the next version.",
        inputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        outputs=(TensorSpec(name="deblurred", dims=(3, -1, -1)),),
        # Trained on RGB in [-1, 1]; the output is the input plus a residual, clamped.
        value_range=(-1.0, 1.0),
        # Two stride-2 convs and two transposed convs: H and W multiples of 4; the blocks'
        # reflect padding needs a 2x2 bottleneck.
        min_input_size=8,
        size_multiple=4,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="training_run",
            source="trained by `gantry models build` (config deblurgan-photos, its "
            "build_steps) on ../shared/data/train/natural_photos_sr (held-aside photos "
            "excluded); or a run's generator.pth",
            license=_NATURAL_PHOTOS_LICENSE,
            upstream="KupynOrest/DeblurGAN (ResnetGenerator keys, latest_net_G.pth)",
            research_only=True,
        ),
        # Windows of 256 px sharing 32 px of context each side: about half the network's
        # 79 px receptive field, and instance norm sees most of a window's content.
        spec=DeblurSpec(tile_size=256, tile_pad=32, output_range=(-1.0, 1.0)),
    )
