"""Restoration: deblurring (DeblurGAN) and inpainting (GLCIC) networks trained by
``trainer/recipes``."""

from __future__ import annotations

from gantry.core.cards import DeblurSpec, InpaintSpec, ModelCard, TensorSpec, WeightsSpec
from gantry.core.training import DeblurGANConfig, GLCICConfig, load_train_config
from trainer.archs.glcic import CONTEXT, SIZE_MULTIPLE
from trainer.catalog import CARDS

_NATURAL_PHOTOS_LICENSE = (
    "research only: trained on ../shared/data/train/natural_photos_sr (BSD68: non-commercial "
    "research and educational use; Sun-Hays 80 and Urban100: research use); architecture "
    "after KupynOrest/DeblurGAN (BSD)"
)
_GLCIC_LICENSE = (
    "research only: trained on ../shared/data/train/natural_photos_sr (BSD68: non-commercial "
    "research and educational use; Sun-Hays 80 and Urban100: research use); architecture "
    "after Iizuka et al. 2017 with otenim/GLCIC-PyTorch's layer names (MIT)"
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


@CARDS.register("glcic-photos")
def glcic_photos() -> ModelCard:
    """GLCIC's completion network, from the shipped glcic-photos config."""
    config = load_train_config("glcic-photos")
    assert isinstance(config, GLCICConfig)
    return ModelCard(
        name="glcic-photos",
        architecture=config.generator,
        description="Globally and locally consistent image completion (Iizuka et al. 2017): "
        "the paper's 17-layer completion network with dilations 2, 4, 8 and 16 at a quarter "
        "of its width (0.38M parameters, the paper's 6.1M), trained here on natural photos "
        "with rectangle and free-form holes (96 px crops, holes up to 48 px). Version 1 is "
        "the short run `gantry models build` trains (250 steps: MSE, then discriminator, "
        "then joint); `gantry train glcic-photos --publish` trains the full config and "
        "publishes the next version.",
        inputs=(TensorSpec(name="image_and_mask", dims=(4, -1, -1)),),
        outputs=(TensorSpec(name="completion", dims=(3, -1, -1)),),
        # RGB in [0, 1] then the mask (1 = hole); the output is a sigmoid, in [0, 1].
        value_range=(0.0, 1.0),
        min_input_size=SIZE_MULTIPLE,
        size_multiple=SIZE_MULTIPLE,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="training_run",
            source="trained by `gantry models build` (config glcic-photos, its build_steps) "
            "on ../shared/data/train/natural_photos_sr (held-aside photos excluded); or a "
            "run's generator.pth",
            license=_GLCIC_LICENSE,
            upstream="otenim/GLCIC-PyTorch (CompletionNetwork keys conv1..conv17, bn1..bn16)",
            research_only=True,
        ),
        # The receptive field is about 300 px: the hole's box runs with CONTEXT (156) px
        # each side, in one window up to 768 px, else in 768 px windows sharing 160 px of
        # context each side (more than half the receptive field: the tiles' fill is the
        # whole region's, but a window's core is only 448 px).
        spec=InpaintSpec(context=CONTEXT, tile_size=768, tile_pad=160, output_range=(0.0, 1.0)),
    )
