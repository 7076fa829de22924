"""Image-to-image translation: generators trained by ``trainer/recipes`` (pix2pix, ...)."""

from __future__ import annotations

from gantry.core.cards import ImageToImageSpec, ModelCard, TensorSpec, WeightsSpec
from trainer.catalog import CARDS

_CMP_LICENSE = (
    "research only: trained on the CMP Facade DB (research/educational use); architecture "
    "after junyanz/pytorch-CycleGAN-and-pix2pix (BSD)"
)


@CARDS.register("pix2pix-facades")
def pix2pix_facades() -> ModelCard:
    """pix2pix (U-Net + PatchGAN) on CMP facades: a colour-coded label map to a photo."""
    return ModelCard(
        name="pix2pix-facades",
        architecture="pix2pix_unet_tiny",
        description="pix2pix, colour-coded facade label map (the CMP palette) to a facade "
        "photo; a small U-Net (1.8M parameters) trained here on 302 CMP pairs. Version 1 is "
        "the short run `gantry models build` trains; `gantry train pix2pix-facades --publish` "
        "trains the full config and publishes the next version.",
        inputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        outputs=(TensorSpec(name="translated", dims=(3, -1, -1)),),
        value_range=(-1.0, 1.0),
        # Six stride-2 levels: H and W must be multiples of 64.
        min_input_size=64,
        size_multiple=64,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="training_run",
            source="trained by `gantry models build` (config pix2pix-facades, its build_steps) "
            "on ../shared/data/train/cmp_facades/train; or a run's generator.pth",
            license=_CMP_LICENSE,
            upstream="junyanz/pytorch-CycleGAN-and-pix2pix (latest_net_G.pth keys)",
            research_only=True,
        ),
        spec=ImageToImageSpec(output_range=(-1.0, 1.0)),
    )


@CARDS.register("cyclegan-vintagify")
def cyclegan_vintagify() -> ModelCard:
    """CycleGAN ResNet-9 generator, modern photo → vintage look (vintagify's G_A2B)."""
    return ModelCard(
        name="cyclegan-vintagify",
        architecture="cyclegan_vintagify",
        description="CycleGAN generator (ResNet, 9 blocks, affine instance norm, 11.4M "
        "parameters) translating modern photos to a vintage look; trained by the vintagify "
        "authors at 512x512 (epoch 33).",
        inputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        outputs=(TensorSpec(name="translated", dims=(3, -1, -1)),),
        # vintagify: ToTensor then Normalize(0.5, 0.5), i.e. RGB in [-1, 1]; output the same.
        value_range=(-1.0, 1.0),
        # Two stride-2 downsamplings and two transposed convs: H and W multiples of 4.
        min_input_size=8,
        size_multiple=4,
        max_batch_size=1,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="vintagify",
            source="vintagify==0.1.2 wheel, vintagify/resources/G_A2B_epoch33.pth",
            license="MIT (vintagify)",
            upstream="junyanz/pytorch-CycleGAN-and-pix2pix (ResnetGenerator keys; vintagify "
            "names the residual blocks `block`)",
        ),
        spec=ImageToImageSpec(output_range=(-1.0, 1.0)),
    )
