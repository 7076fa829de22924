"""One recipe per GAN family: it builds its networks, implements one training step, measures
itself on held-aside data, and names the model a run publishes to. The loop
(:mod:`trainer.loop`) does everything else, the same way for every family."""

from __future__ import annotations

from gantry.core.registry import Registry
from trainer.recipes.base import Recipe

RECIPES: Registry[type[Recipe]] = Registry("training recipe")

# Imported for their side effect: each module registers its recipe.
from trainer.recipes import (  # noqa: E402
    capg_gan,
    combogan,
    cyclegan,
    deblurgan,
    genegan,
    glcic,
    icgan,
    pfld,
    pix2pix,
    pix2pixhd,
    progan,
    recognition,
    stargan,
    stargan_v2,
    superres,
    tpgan,
)

__all__ = [
    "RECIPES",
    "Recipe",
    "capg_gan",
    "combogan",
    "cyclegan",
    "deblurgan",
    "genegan",
    "glcic",
    "icgan",
    "pfld",
    "pix2pix",
    "pix2pixhd",
    "progan",
    "recognition",
    "stargan",
    "stargan_v2",
    "superres",
    "tpgan",
]
