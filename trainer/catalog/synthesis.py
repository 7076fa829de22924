"""Synthesis: pix2pixHD label-map-to-image generators."""

from __future__ import annotations

from gantry.core.cards import ModelCard, SynthesisSpec, TensorSpec, WeightsSpec
from gantry.core.labelmaps import CMP_FACADE_CLASSES, CMP_FACADE_FIRST_ID
from trainer.catalog import CARDS


@CARDS.register("pix2pixhd-facades-tiny")
def pix2pixhd_facades_tiny() -> ModelCard:
    """A TINY pix2pixHD (G1 + G2) trained here on CMP facades: a test configuration."""
    spec = SynthesisSpec(
        class_names=CMP_FACADE_CLASSES, first_label_id=CMP_FACADE_FIRST_ID, feat_num=3
    )
    return ModelCard(
        name="pix2pixhd-facades-tiny",
        architecture="pix2pixhd_facades_tiny",
        description="TEST CONFIGURATION, not a production model: a tiny pix2pixHD local "
        "enhancer (ngf 8, 0.22M parameters) trained coarse to fine (G1, then G2 with G1 fixed, "
        "then both) with its feature encoder against a two-scale D, at 128x128 on CMP "
        "facades. Label map (+ features) to a facade photo.",
        inputs=(TensorSpec(name="label", dims=(spec.input_channels, -1, -1)),),
        outputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        value_range=(-1.0, 1.0),
        min_input_size=16,
        size_multiple=8,
        max_batch_size=1,
        preferred_batch_sizes=(),
        weights=WeightsSpec(
            importer="training_run",
            source="trained by `gantry models build` (config pix2pixhd-facades-tiny, its "
            "build_steps) on ../shared/data/train/cmp_facades/train; or a run's generator.pth",
            license="research only: trained on the CMP Facade DB (research/educational use); "
            "architecture after NVIDIA/pix2pixHD",
            upstream="NVIDIA/pix2pixHD (latest_net_G.pth keys)",
            research_only=True,
        ),
        spec=spec,
    )
