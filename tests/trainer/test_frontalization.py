"""Frontalization: the CMU pose pairs, CAPG-GAN's generator, the identity embedder's warp, and
both recipes (CAPG-GAN, TP-GAN) for a few steps on the real data and weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gantry.core.alignment import similarity_transform
from gantry.core.landmarks import five_points
from gantry.core.training import CAPGGANConfig, TPGANConfig, load_train_config
from tests.paths import DATA
from trainer.archs import build_network
from trainer.archs.capg_gan import CAPGGenerator, render_heatmaps
from trainer.catalog import card
from trainer.data import build_dataset
from trainer.data.frontalization import FRONTAL_TEMPLATE, PosePairs
from trainer.evaluation.frontalization import warp_theta
from trainer.recipes import RECIPES
from trainer.recipes.frontalization import FrontalizationRecipe

SIZE = 64


@pytest.fixture(scope="module")
def pairs() -> dict[str, PosePairs]:
    splits = {}
    for split in ("train", "val"):
        dataset = build_dataset("cmu_pose_pairs", DATA, split, SIZE)
        assert isinstance(dataset, PosePairs)
        splits[split] = dataset
    return splits


def test_held_aside_people_never_train_and_every_source_has_its_frontal(
    pairs: dict[str, PosePairs],
) -> None:
    train, val = pairs["train"], pairs["val"]
    assert val.people == ["dave", "henry", "larry", "paula", "tom"]
    assert not set(train.people) & set(val.people) and len(train.people) == 15
    for source, truth in (*train.pairs, *val.pairs):
        assert truth.pose == "forward" and source.pose in ("left", "right", "forward")
        assert (source.person, source.expression, source.eyes) == (
            truth.person,
            truth.expression,
            truth.eyes,
        )
    assert {s.pose for s, _ in val.pairs} == {"left", "right", "forward"}


def test_targets_are_aligned_on_the_frontal_template_also_flipped(
    pairs: dict[str, PosePairs],
) -> None:
    dataset = pairs["val"]  # held aside: no jitter, the same sample every time
    template = np.asarray(FRONTAL_TEMPLATE)
    for index in range(0, len(dataset), 17):
        for flip in (False, True):
            sample = dataset.sample(index, flip=flip)
            assert sample["image"].shape == sample["target"].shape == (1, SIZE, SIZE)
            assert -1 <= float(sample["target"].min()) < float(sample["target"].max()) <= 1
            five = five_points(sample["target_points"].numpy()[None].astype(np.float64), "ibug68")
            # A least-squares similarity: each point within 4% of the side of the template.
            assert np.abs(five[0] - template).max() < 0.04
            points = sample["points"].numpy()
            assert (points > -0.1).all() and (points < 1.1).all()
    plain, flipped = dataset.sample(3), dataset.sample(3, flip=True)
    assert torch.equal(flipped["image"], plain["image"].flip(-1))
    # The mirror's left eye corner (36) is the face's right one (45), mirrored.
    assert float(flipped["points"][36, 0]) == pytest.approx(1 - float(plain["points"][45, 0]))
    assert float(flipped["points"][36, 1]) == pytest.approx(float(plain["points"][45, 1]))


def test_training_crops_are_jittered_held_aside_ones_fixed(pairs: dict[str, PosePairs]) -> None:
    torch.manual_seed(0)
    a, b = pairs["train"].sample(0), pairs["train"].sample(0)
    assert not torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert torch.equal(pairs["val"].sample(0)["image"], pairs["val"].sample(0)["image"])


def test_the_mean_frontal_points_are_mirror_symmetric(pairs: dict[str, PosePairs]) -> None:
    mean = pairs["train"].mean_frontal_points()
    assert mean.shape == (68, 2)
    assert float(mean[36, 0]) == pytest.approx(1 - float(mean[45, 0]), abs=1e-6)
    assert float(mean[30, 0]) == pytest.approx(0.5, abs=1e-6)  # the nose tip on the midline


def test_heatmaps_peak_at_their_points() -> None:
    points = torch.tensor([[[0.25, 0.75], [0.5, 0.5]]])
    maps = render_heatmaps(points, 16, sigma=1.0)
    assert maps.shape == (1, 2, 16, 16)
    # (0.25, 0.75) of a 16 px square is the corner between pixels 3, 4 (x) and 11, 12 (y).
    peak = maps[0, 0]
    assert {(int(y), int(x)) for y, x in (peak == peak.max()).nonzero()} == {
        (11, 3),
        (11, 4),
        (12, 3),
        (12, 4),
    }
    assert float(peak.max()) == pytest.approx(float(np.exp(-0.25)), rel=1e-5)


def test_capg_renders_its_frontal_points_when_given_no_target() -> None:
    torch.manual_seed(0)
    generator = build_network("capg_generator_tiny").eval()
    assert isinstance(generator, CAPGGenerator)
    with torch.no_grad():
        generator.frontal_points.copy_(torch.rand(68, 2))
        image, points = torch.rand(2, 1, SIZE, SIZE) * 2 - 1, torch.rand(2, 68, 2)
        served = generator(image, points)
        explicit = generator(image, points, generator.frontal_points.expand(2, 68, 2))
        other = generator(image, points, torch.rand(2, 68, 2))
    assert served.shape == (2, 1, SIZE, SIZE) and torch.equal(served, explicit)
    assert not torch.allclose(served, other)
    assert "frontal_points" in generator.state_dict()  # exported and checkpointed with G


def test_the_embedder_warp_puts_template_points_on_the_embedders_template() -> None:
    spec = card("mobilefacenet-arcface").spec
    target = np.asarray(spec.landmark_template, np.float64)  # type: ignore[union-attr]
    source = np.asarray(FRONTAL_TEMPLATE, np.float64) * SIZE
    theta = warp_theta(source, SIZE, target, 112)
    image = torch.zeros(1, 1, SIZE, SIZE)
    x, y = (round(float(v)) for v in source[2])  # the nose tip, at a whole pixel
    image[0, 0, y, x] = 1.0
    grid = torch.nn.functional.affine_grid(theta[None], [1, 1, 112, 112], align_corners=False)
    warped = torch.nn.functional.grid_sample(image, grid, align_corners=False)[0, 0]
    peak = (warped == warped.max()).nonzero()[0]
    # Where the similarity that maps the frontal template onto ArcFace's sends that pixel.
    expected = similarity_transform(source, target) @ np.array([x, y, 1.0])
    assert np.abs(peak.numpy()[::-1] - expected).max() <= 1.0


TINY = {"capg-gan-cmu": "capg", "tpgan-cmu": "tpgan"}


def _small(name: str) -> CAPGGANConfig | TPGANConfig:
    family = TINY[name]
    config = load_train_config(
        name,
        {
            "generator": f"{family}_generator_tiny",
            "discriminator": f"{family}_discriminator_tiny",
            "batch_size": 2,
            "data.val_images": 4,
        },
    )
    assert isinstance(config, CAPGGANConfig | TPGANConfig)
    return config


@pytest.mark.parametrize("name", ["capg-gan-cmu", "tpgan-cmu"])
def test_both_recipes_train_every_generator_weight_and_measure_identity(name: str) -> None:
    config = _small(name)
    torch.manual_seed(0)
    recipe = RECIPES.get(config.recipe)(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, FrontalizationRecipe)
    recipe.build()
    generator = recipe.networks["generator"]
    before = {n: p.clone() for n, p in generator.named_parameters()}
    frozen = {n: p.clone() for n, p in recipe.embedder.named_parameters()}
    dataset = recipe.train_dataset()
    for step in range(3):
        torch.manual_seed(step)
        samples = [dataset.sample(i) for i in (step, step + 40)]
        batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
        losses = recipe.train_step(batch, step)
        assert all(np.isfinite(v) for v in losses.values()), losses
        assert 0 <= losses["g_identity"] <= 2 and losses["g_pixel"] > 0
    moved = {n for n, p in generator.named_parameters() if not torch.equal(p, before[n])}
    assert moved == set(before)
    assert all(torch.equal(p, frozen[n]) for n, p in recipe.embedder.named_parameters())
    figures = recipe.evaluate(generator.eval())
    assert set(figures) == {
        "l1",
        "identity_unfrontalized",
        "identity_frontalized",
        "identity_truth_chip",
        "auc_unfrontalized",
        "auc_frontalized",
    }
    # The served embedder on the true frontal chips themselves knows the person.
    assert figures["identity_truth_chip"] > 0.8 > figures["identity_unfrontalized"] > 0.2
    rows = recipe.samples(generator)
    assert len(rows) == 4 and all(t.shape == (3, SIZE, SIZE) for row in rows for t in row)


def test_the_shipped_configs_train_the_full_networks_on_the_pose_pairs() -> None:
    for name, recipe in (("capg-gan-cmu", "capg_gan"), ("tpgan-cmu", "tpgan")):
        config = load_train_config(name)
        assert config.recipe == recipe and config.publish == name
        assert (config.data.dataset, config.data.size) == ("cmu_pose_pairs", SIZE)
        assert not config.generator.endswith("_tiny")  # type: ignore[attr-defined]
        assert config.for_build().steps == config.build_steps
