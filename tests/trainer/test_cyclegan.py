"""The CycleGAN recipe on CelebA black ↔ blond hair: data, image pool, steps, exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gantry.core.errors import InvalidInput
from gantry.core.training import CycleGANConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN, train_under_torchrun
from trainer import checkpointing
from trainer.data import build_dataset, collate
from trainer.data.unpaired import CELEBA, VAL_PER_DOMAIN, UnpairedFaces
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.cyclegan import CycleGANRecipe, ImagePool

NETWORKS = ("G_A", "G_B", "D_A", "D_B")
# A pool of 3 is full after two steps of two images, so 8 steps exercise its swaps.
SMALL = {**SMALL_RUN, "pool_size": 3}


def _config(**overrides: Any) -> CycleGANConfig:
    config = load_train_config("cyclegan-celeba-hair", {**SMALL, **overrides})
    assert isinstance(config, CycleGANConfig)
    return config


def test_the_shipped_config_has_junyanz_defaults_and_small_networks() -> None:
    config = load_train_config("cyclegan-celeba-hair")
    assert isinstance(config, CycleGANConfig)
    assert (config.gan_loss, config.lambda_a, config.lambda_b) == ("lsgan", 10, 10)
    assert (config.lambda_identity, config.pool_size, config.publish) == (0.5, 50, None)
    assert (config.generator, config.discriminator) == ("cyclegan_resnet_tiny", "patchgan70_tiny")
    assert (config.data.dataset, config.data.size) == ("celeba_hair", 64)
    assert config.time_limit_s is not None and config.time_limit_s <= 900
    with pytest.raises(InvalidInput, match="pool_size"):
        load_train_config("cyclegan-celeba-hair", {"pool_size": -1})


def test_the_domains_hold_aside_the_last_faces_of_each_list() -> None:
    train_set = build_dataset("celeba_hair", DATA, "train", 32)
    val = build_dataset("celeba_hair", DATA, "val", 32)
    assert isinstance(train_set, UnpairedFaces) and isinstance(val, UnpairedFaces)
    lists = DATA / CELEBA / "unpaired_domains"
    listed_a = (lists / "black_to_blond_hair_A.txt").read_text().split()
    listed_b = (lists / "black_to_blond_hair_B.txt").read_text().split()
    assert train_set.files_a + val.files_a == sorted(listed_a)  # 1,215 black-haired faces
    assert train_set.files_b + val.files_b == sorted(listed_b)  # 729 blond
    assert len(val.files_a) == len(val.files_b) == VAL_PER_DOMAIN
    assert (len(train_set), train_set.a.shape) == (1115, (1115, 32, 32, 3))

    sample = train_set.sample(7)
    assert set(sample) == {"a", "b"} and sample["a"].shape == (3, 32, 32)
    assert float(sample["a"].min()) >= -1 and float(sample["a"].max()) <= 1
    # Unpaired: B's face is not A's index (a fixed permutation), and it is deterministic.
    b_faces = [train_set.sample(i)["b"] for i in range(8)]
    own_index = [torch.equal(b, train_set.images("b")[i]) for i, b in enumerate(b_faces)]
    assert not all(own_index)
    assert torch.equal(build_dataset("celeba_hair", DATA, "train", 32).sample(7)["b"], sample["b"])
    assert torch.equal(train_set.sample(7, flip=True)["b"], sample["b"].flip(2))


def test_the_image_pool_keeps_history_and_swaps_half_the_time() -> None:
    assert torch.equal(ImagePool(0).query(torch.ones(2, 3, 4, 4)), torch.ones(2, 3, 4, 4))
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2)
    assert torch.equal(pool.query(first), first)  # filling: the images themselves
    assert len(pool) == 4
    returned = [
        float(pool.query(torch.full((1, 3, 2, 2), 10.0 + i))[0, 0, 0, 0]) for i in range(200)
    ]
    assert len(pool) == 4
    older = [value for i, value in enumerate(returned) if value != 10.0 + i]
    assert 70 < len(older) < 130  # each image swapped with probability 1/2
    # What comes back instead is from history: the first four or an earlier query.
    assert all(value <= 10.0 + i for i, value in enumerate(returned))

    state = pool.state_dict()
    restored = ImagePool(4)
    restored.load_state_dict(state, torch.device("cpu"))
    torch.manual_seed(1)
    again = pool.query(torch.full((5, 3, 2, 2), -1.0))
    torch.manual_seed(1)
    assert torch.equal(restored.query(torch.full((5, 3, 2, 2), -1.0)), again)
    with pytest.raises(ValueError, match="pool size"):
        ImagePool(2).load_state_dict(state, torch.device("cpu"))


def test_steps_have_finite_losses_and_move_all_four_networks() -> None:
    config = _config()
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("cyclegan")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, CycleGANRecipe)
    recipe.build()
    assert recipe.generator_key == "G_A" and set(recipe.networks) == set(NETWORKS)
    assert set(recipe.optimizers) == {"G", "D"}
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    for step in range(2):
        losses = recipe.train_step(
            collate([dataset.sample(i) for i in (2 * step, 2 * step + 1)]), step
        )
    assert set(losses) == {"g_a", "g_b", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_a", "d_b"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert 0 < losses["cycle_a"] < 20  # 10 · L1 in [-1, 1] images
    for name, network in recipe.networks.items():
        assert all(p.requires_grad for p in network.parameters())
        changed = [n for n, p in network.named_parameters() if not torch.equal(p, before[name][n])]
        assert len(changed) == len(before[name]), name
    assert len(recipe.pool_a) == len(recipe.pool_b) == 3


def test_a_paired_dataset_is_refused() -> None:
    config = _config(**{"data.dataset": "cmp_facades"})
    recipe = RECIPES.get("cyclegan")(config, data_dir=DATA, device=torch.device("cpu"))
    with pytest.raises(TypeError, match="unpaired"):
        recipe.build()


def test_a_resumed_run_repeats_the_uninterrupted_one_pools_included(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(_config(steps=8), straight, data_dir=DATA, device="cpu")
    train(_config(steps=4), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=8), resumed, data_dir=DATA, device="cpu")

    assert (again.resumed_from, again.step) == (4, 8)
    a = checkpointing.load(straight / "checkpoints" / "step-000008.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000008.pt")
    for name in NETWORKS:
        assert all(
            torch.equal(a["networks"][name][k], b["networks"][name][k]) for k in a["networks"][name]
        )
    for pool in ("pool_a", "pool_b"):
        assert a["recipe_state"][pool]["images"].shape == (3, 3, 64, 64)
        assert torch.equal(a["recipe_state"][pool]["images"], b["recipe_state"][pool]["images"])
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    assert all(torch.equal(exported[k], a["networks"]["G_A"][k]) for k in exported)

    assert set(result.metrics) == {
        "classifier_real_acc",
        "identity_cos_other_people",
        "val_domain_acc_a2b",
        "val_domain_acc_b2a",
        "val_identity_cos_a2b",
        "val_identity_cos_b2a",
    }
    assert result.metrics == again.metrics  # the same weights, the same (cached) classifier
    assert list((straight / "evaluation").glob("domain-classifier-*.pt"))
    assert 0.5 < result.metrics["val_identity_cos_a2b"] <= 1


def test_two_process_ddp_under_torchrun(tmp_path: Path) -> None:
    """Four networks in DDP, G's loss back-propagating through the wrapped Ds (gloo)."""
    result, _ = train_under_torchrun("cyclegan-celeba-hair", {**SMALL, "steps": 4}, tmp_path)
    assert (result["world_size"], result["step"]) == (2, 4)
    assert "val_identity_cos_a2b" in result["metrics"]
