"""Unconditional generation: generators trained by ``trainer/recipes`` that turn a latent
into an image (Progressive GAN on CelebA, research only). Each card reads its shipped
training config and the network's sizes, so the latent length and the resolution are
written once, there."""

from __future__ import annotations

import torch

from gantry.core.cards import GenerationSpec, ModelCard, TensorSpec
from gantry.core.training import ProGANConfig, load_train_config
from trainer.archs import build_network
from trainer.archs.progan import ProGANGenerator
from trainer.catalog import CARDS
from trainer.catalog.editing import celeba_weights


@CARDS.register("progan-celeba")
def progan_celeba() -> ModelCard:
    """The Progressive GAN generator at its final resolution, from the shipped config."""
    config = load_train_config("progan-celeba")
    assert isinstance(config, ProGANConfig)
    name = "progan-celeba"
    with torch.device("meta"):  # only its sizes
        g = build_network(config.generator)
    assert isinstance(g, ProGANGenerator)
    side, latent = g.resolution, g.latent_dim
    build = config.for_build()
    assert isinstance(build, ProGANConfig)
    per_stage = build.schedule.fade_in + build.schedule.stable
    return ModelCard(
        name=name,
        architecture=config.generator,
        description=f"Progressive GAN (Karras et al. 2018) faces at {side}x{side} from a "
        f"{latent}-d latent: a CPU-sized network ({config.stages} stages from 4x4, narrow "
        "channels; the paper grows to 1024x1024 with 512-d latents), trained here on "
        "CelebA aligned faces. Version 1 is the short run `gantry models build` trains "
        f"({build.steps} steps, {per_stage} at each resolution: colour blobs in a face's "
        f"layout, not yet faces); `gantry train {name} --publish` trains the full config "
        f"({config.steps} steps: faces) and publishes the next version.",
        inputs=(TensorSpec(name="z", dims=(latent,)),),
        outputs=(TensorSpec(name="image", dims=(3, side, side)),),
        value_range=(-1.0, 1.0),
        max_batch_size=8,
        preferred_batch_sizes=(),
        weights=celeba_weights(
            name, "tkarras/progressive_growing_of_gans (G_paper layers; own module names)"
        ),
        spec=GenerationSpec(latent_dim=latent, resolution=side, output_range=(-1.0, 1.0)),
    )
