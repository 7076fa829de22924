"""GLCIC: otenim/GLCIC-PyTorch's key layout, the receptive field serving relies on, the holes
(rectangles and free-form strokes), the photos with holes, PSNR inside the hole and its
baselines, the recipe's three phases, resume, and the served network's export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gantry.core.cards import InpaintSpec
from gantry.core.errors import InvalidInput
from gantry.core.training import CONFIG_TYPES, GLCICConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.glcic import (
    CONTEXT,
    NATURAL_PHOTOS_MEAN,
    CompletionNetwork,
    composite,
    receptive_field,
)
from trainer.catalog import card
from trainer.data import build_dataset
from trainer.data.blur import NATURAL_PHOTOS, is_held_aside, load_photos, photo_names
from trainer.data.inpainting import HolePhotos
from trainer.data.masks import hole_geometry, random_free_form, random_hole, random_rectangle
from trainer.evaluation import hole_psnr, inpainting_figures, mean_fill, telea_fill
from trainer.export.onnx import check_parity, export_onnx
from trainer.export.probes import probe_inputs
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.glcic import GLCICRecipe, hole_mse, local_patches, phase_of

# 64 px crops (32 px patches), batch 2; two steps of each phase.
SMALL = {**SMALL_RUN, "t_c": 2, "t_d": 2}


def _config(**overrides: Any) -> GLCICConfig:
    config = load_train_config("glcic-photos", {**SMALL, **overrides})
    assert isinstance(config, GLCICConfig)
    return config


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- otenim/GLCIC-PyTorch's layout ------------------------------------------------------------
# Written out by hand from models.py (CompletionNetwork; ContextDiscriminator in places2 mode)
# at the paper's widths: the completion network's Table 1 and the 256 / 128 px discriminators.


def test_the_full_completion_network_has_glcics_keys_and_shapes() -> None:
    with torch.device("meta"):
        network = build_network("glcic_completion")
    convs: dict[str, tuple[int, int, int]] = {
        "conv1": (64, 4, 5),
        "conv2": (128, 64, 3),
        "conv3": (128, 128, 3),
        "conv4": (256, 128, 3),
        **{f"conv{i}": (256, 256, 3) for i in range(5, 13)},
        "deconv13": (256, 128, 4),  # ConvTranspose2d: (in, out, k, k)
        "conv14": (128, 128, 3),
        "deconv15": (128, 64, 4),
        "conv16": (32, 64, 3),
        "conv17": (3, 32, 3),
    }
    expected: dict[str, tuple[int, ...]] = {}
    for index, (name, (a, b, k)) in enumerate(convs.items(), start=1):
        expected[f"{name}.weight"] = (a, b, k, k)
        out = b if name.startswith("deconv") else a
        expected[f"{name}.bias"] = (out,)
        if index < 17:
            for stat in ("weight", "bias", "running_mean", "running_var"):
                expected[f"bn{index}.{stat}"] = (out,)
            expected[f"bn{index}.num_batches_tracked"] = ()
    assert _shapes(network) == expected
    dilations = [getattr(network, f"conv{i}").dilation for i in range(7, 11)]
    assert dilations == [(2, 2), (4, 4), (8, 8), (16, 16)]
    assert sum(p.numel() for p in network.parameters()) == 6_072_131


def test_the_full_context_discriminator_has_glcics_keys_and_shapes() -> None:
    with torch.device("meta"):
        network = build_network("glcic_discriminator")
    shapes = _shapes(network)
    channels = [3, 64, 128, 256, 512, 512, 512]
    for part, convs, linear in (("model_ld", 5, "linear6"), ("model_gd", 6, "linear7")):
        for i in range(1, convs + 1):
            assert shapes[f"{part}.conv{i}.weight"] == (channels[i], channels[i - 1], 5, 5)
            assert shapes[f"{part}.bn{i}.running_var"] == (channels[i],)
        # 128 px patches and 256 px images both end at 4 x 4 x 512.
        assert shapes[f"{part}.{linear}.weight"] == (1024, 512 * 4 * 4)
    assert shapes["linear1.weight"] == (1, 2048)
    assert not any(k.startswith("model_ld.conv6") for k in shapes)


def test_the_receptive_field_is_glcics_and_the_context_covers_half_of_it() -> None:
    torch.manual_seed(0)
    network = build_network("glcic_completion_tiny").eval()
    x = torch.rand(1, 4, 400, 400, requires_grad=True)
    network(x)[0, :, 200, 200].sum().backward()
    assert x.grad is not None
    rows = torch.nonzero(x.grad[0].abs().sum(0).sum(1)).flatten()
    reach = max(200 - int(rows.min()), int(rows.max()) - 200)
    side = int(rows.max() - rows.min()) + 1
    assert 290 < side <= receptive_field() <= 310  # the paper: 307 x 307
    assert reach <= CONTEXT and CONTEXT % 4 == 0


def test_the_hole_is_mean_filled_inside_the_network_and_composited_outside() -> None:
    torch.manual_seed(0)
    network = build_network("glcic_completion_tiny").eval()
    assert isinstance(network, CompletionNetwork)
    image = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 4:28] = 1
    noisy = image + mask * torch.rand_like(image)  # whatever lies in the hole
    with torch.no_grad():
        a = network(torch.cat([image, mask], 1))
        b = network(torch.cat([noisy, mask], 1))
    assert torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    done = composite(image, mask, a)
    assert torch.equal(done * (1 - mask), image * (1 - mask))
    assert torch.equal(done * mask, a * mask)
    assert network.mean_pixel.flatten().tolist() == pytest.approx(NATURAL_PHOTOS_MEAN)
    assert "mean_pixel" not in network.state_dict()
    with pytest.raises(ValueError, match="multiples of 4"):
        network(torch.rand(1, 4, 30, 32))


def test_the_mean_pixel_is_the_training_photos_mean() -> None:
    root = DATA / NATURAL_PHOTOS
    names = photo_names(root, "train")
    total, count = np.zeros(3), 0
    for photo in load_photos(root, tuple(names)):
        total += photo.reshape(-1, 3).sum(0) / 255
        count += photo.shape[0] * photo.shape[1]
    assert (total / count).tolist() == pytest.approx(NATURAL_PHOTOS_MEAN, abs=1e-4)


# --- holes and photos -------------------------------------------------------------------------


def test_rectangles_have_glcics_sides_inside_the_local_patch() -> None:
    geometry = hole_geometry(256)
    assert (geometry.local, geometry.hole_min, geometry.hole_max) == (128, 96, 128)
    rng = np.random.default_rng(0)
    for _ in range(50):
        hole = random_rectangle(rng, geometry)
        rows, cols = np.flatnonzero(hole.mask.any(1)), np.flatnonzero(hole.mask.any(0))
        assert 96 <= len(rows) <= 128 and 96 <= len(cols) <= 128
        assert hole.mask.sum() == len(rows) * len(cols)  # one filled box
        assert hole.top <= rows[0] and rows[-1] < hole.top + 128
        assert hole.left <= cols[0] and cols[-1] < hole.left + 128


def test_free_form_holes_are_strokes_inside_the_patch_and_seeded() -> None:
    geometry = hole_geometry(96)
    rng = np.random.default_rng(1)
    for _ in range(50):
        hole = random_free_form(rng, geometry)
        inside = hole.mask[hole.top : hole.top + 48, hole.left : hole.left + 48]
        assert hole.mask.sum() == inside.sum() > 0
        assert set(np.unique(hole.mask)) <= {0.0, 1.0}
    a = random_hole(np.random.default_rng(5), geometry)
    b = random_hole(np.random.default_rng(5), geometry)
    assert np.array_equal(a.mask, b.mask) and (a.top, a.left) == (b.top, b.left)
    assert all(random_hole(rng, geometry).mask.sum() > 0 for _ in range(20))


@pytest.fixture(scope="module")
def photos() -> tuple[HolePhotos, HolePhotos]:
    train_set = build_dataset("hole_photos", DATA, "train", 64)
    val = build_dataset("hole_photos", DATA, "val", 64)
    assert isinstance(train_set, HolePhotos) and isinstance(val, HolePhotos)
    return train_set, val


def test_the_held_aside_photos_are_the_deblurring_split(
    photos: tuple[HolePhotos, HolePhotos],
) -> None:
    train_set, val = photos
    assert len(val) == 33 and len(train_set) == 215
    assert all(is_held_aside(n) for n in val.names)
    assert not any(is_held_aside(n) for n in train_set.names)


def test_samples_are_seeded_and_held_aside_ones_fixed(
    photos: tuple[HolePhotos, HolePhotos],
) -> None:
    train_set, val = photos
    a, b = val.sample(3), val.sample(3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["image"].shape == (3, 64, 64) and a["mask"].shape == (1, 64, 64)
    assert a["patch"].dtype == torch.int64 and a["patch"].shape == (2,)
    assert float(a["image"].min()) >= -1 and float(a["image"].max()) <= 1
    torch.manual_seed(0)
    c = train_set.sample(0)
    torch.manual_seed(0)
    d = train_set.sample(0)
    assert all(torch.equal(c[k], d[k]) for k in c)
    e = train_set.sample(0)
    assert not torch.equal(c["mask"], e["mask"]) or not torch.equal(c["image"], e["image"])
    top, left = c["patch"].tolist()
    assert c["mask"].sum() == c["mask"][:, top : top + 32, left : left + 32].sum() > 0


# --- evaluation -------------------------------------------------------------------------------


def test_psnr_inside_the_hole_and_the_baselines() -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 4:12, 4:12] = 1
    mask[1, :, 10:30, 2:8] = 1
    filled = image.clone()
    filled[:, :, 4:12, 4:12] += 0.1 * mask[:, :, 4:12, 4:12]  # wrong in image 0's hole only
    filled[1] = torch.where(mask[1].bool(), torch.zeros_like(image[1]), image[1])
    levels = lambda t: np.floor(t.double().numpy() * 255 + 0.5).clip(0, 255)  # noqa: E731
    psnr = hole_psnr(filled, image, mask)
    for i in range(2):
        hole = mask[i, 0].numpy() > 0
        mse = ((levels(filled[i]) - levels(image[i])) ** 2)[:, hole].mean()
        assert float(psnr[i]) == pytest.approx(10 * np.log10(255**2 / mse))
    mean = mean_fill(image, mask)
    known = image[0][:, ~mask[0, 0].bool()]
    assert torch.allclose(mean[0, :, 5, 5], known.mean(1))
    assert torch.equal(mean * (1 - mask), image * (1 - mask))
    rgb = np.ascontiguousarray(levels(image[1]).transpose(1, 2, 0).astype(np.uint8))
    expected = cv2.inpaint(rgb, (mask[1, 0].numpy() * 255).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    telea = telea_fill(image, mask)
    assert np.array_equal(levels(telea[1]).transpose(1, 2, 0), expected)
    figures = inpainting_figures(filled, image, mask)
    assert set(figures) == {"val_psnr_hole", "val_psnr_hole_mean_fill", "val_psnr_hole_telea"}
    with pytest.raises(ValueError, match="filled exactly"):
        inpainting_figures(image, image, mask)
    with pytest.raises(ValueError, match="empty hole"):
        hole_psnr(image, image, torch.zeros_like(mask))


# --- the recipe -------------------------------------------------------------------------------


def _recipe(config: GLCICConfig) -> GLCICRecipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("glcic")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, GLCICRecipe)
    recipe.build()
    return recipe


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def test_the_three_phases_train_c_then_d_then_both_and_every_weight_moves() -> None:
    recipe = _recipe(_config())
    assert set(recipe.networks) == {"generator", "discriminator"} and recipe.local == 32
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    counts, keys = [], []
    for step in range(6):
        torch.manual_seed(step)
        samples = [dataset.sample(i) for i in (0, 1)]
        batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
        losses = recipe.train_step(batch, step)
        assert all(np.isfinite(v) for v in losses.values())
        keys.append(set(losses))
        counts.append(
            (
                _adam_steps(recipe.optimizers["generator"]),
                _adam_steps(recipe.optimizers["discriminator"]),
            )
        )
        if step < 2:
            assert 0 < losses["g_mse"] < 1
    c, d, both = {"g_mse"}, {"d_adv"}, {"g_mse", "g_adv", "d_adv"}
    assert keys == [c, c, d, d, both, both]
    assert counts == [(1, 0), (2, 0), (2, 1), (2, 2), (3, 3), (4, 4)]
    for name, network in recipe.networks.items():
        assert all(p.requires_grad for p in network.parameters())
        moved = {n for n, p in network.named_parameters() if not torch.equal(p, before[name][n])}
        assert moved == set(before[name]), name
    assert [phase_of(recipe.config, s) for s in (0, 1, 2, 3, 4, 99)] == [
        "completion",
        "completion",
        "discriminator",
        "discriminator",
        "joint",
        "joint",
    ]


def test_the_mse_is_over_the_hole_and_the_patches_are_the_holes_squares() -> None:
    output, truth = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :2] = 1
    truth[..., 4:, 4:] = 5  # outside the hole: not counted
    assert float(hole_mse(output, truth, mask)) == 1.0
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    patches = local_patches(images, torch.tensor([[0, 1], [4, 2]]), 4)
    assert torch.equal(patches[0], images[0, :, 0:4, 1:5])
    assert torch.equal(patches[1], images[1, :, 4:8, 2:6])


def test_the_shipped_config_has_glcics_defaults_and_a_scaled_build() -> None:
    config = load_train_config("glcic-photos")
    assert isinstance(config, GLCICConfig) and CONFIG_TYPES.get("glcic") is GLCICConfig
    assert config.alpha == 0.0004 and 0 < config.t_c < config.t_c + config.t_d < config.steps
    assert (config.generator, config.discriminator) == (
        "glcic_completion_tiny",
        "glcic_discriminator_tiny",
    )
    assert (config.data.dataset, config.data.size) == ("hole_photos", 96)
    assert config.publish == "glcic-photos"
    build = config.for_build()
    assert isinstance(build, GLCICConfig) and config.build_steps is not None
    assert (build.steps, build.t_c, build.t_d) == (250, 150, 25)
    assert build.time_limit_s is None
    with pytest.raises(InvalidInput, match="alpha"):
        load_train_config("glcic-photos", {"alpha": -1})


def test_a_dataset_without_holes_is_refused() -> None:
    config = _config(**{"data.dataset": "motion_blur_photos"})
    recipe = RECIPES.get("glcic")(config, data_dir=DATA, device=torch.device("cpu"))
    with pytest.raises(TypeError, match="photos with holes"):
        recipe.build()


# --- runs and resume --------------------------------------------------------------------------


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(_config(steps=6), straight, data_dir=DATA, device="cpu")
    train(_config(steps=3, checkpoint_every=3), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=6), resumed, data_dir=DATA, device="cpu")

    assert (again.resumed_from, again.step) == (3, 6)
    a = checkpointing.load(straight / "checkpoints" / "step-000006.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000006.pt")
    for name in ("generator", "discriminator"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    assert int(a["optimizers"]["generator"]["state"][0]["step"]) == 4  # t_d steps skip C
    assert int(a["optimizers"]["discriminator"]["state"][0]["step"]) == 4  # t_c steps skip D
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    assert exported.keys() == a["networks"]["generator"].keys()
    assert result.generator_architecture == "glcic_completion_tiny"
    assert result.metrics == again.metrics and result.metrics_at_init == again.metrics_at_init
    for figures in (result.metrics_at_init, result.metrics):
        assert set(figures) == {"val_psnr_hole", "val_psnr_hole_mean_fill", "val_psnr_hole_telea"}
        assert all(5 < v < 40 for v in figures.values())
    # The baselines are of the same held-aside crops at init and at the end.
    assert result.metrics["val_psnr_hole_telea"] == result.metrics_at_init["val_psnr_hole_telea"]
    assert result.metrics["val_psnr_hole"] != result.metrics_at_init["val_psnr_hole"]
    assert set(result.last_losses) == {"g_mse", "g_adv", "d_adv"}


# --- served -----------------------------------------------------------------------------------


def test_the_completion_network_exports_with_dynamic_size_and_passes_the_parity_gate(
    tmp_path: Path,
) -> None:
    torch.manual_seed(1)
    model_card = card("glcic-photos")
    assert model_card.task == "inpaint" and model_card.weights.research_only
    assert isinstance(model_card.spec, InpaintSpec) and model_card.spec.context == CONTEXT
    assert model_card.spec.tile_pad >= CONTEXT
    g = build_network(model_card.architecture, **model_card.arch_kwargs).eval()
    path = export_onnx(g, model_card, tmp_path / "model.onnx")
    probes = probe_inputs(model_card, DATA)
    assert len(probes) == 2 and all(np.asarray(x).shape[0] == 4 for _, x in probes)
    report = check_parity(g, path, model_card, probes, tolerance=1e-4)
    assert report.max_abs_err < 1e-4 and len(report.images) == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((36, 52), (64, 128)):
        x = torch.rand(2, 4, h, w)
        x[:, 3] = (x[:, 3] > 0.7).float()
        (y,) = session.run(None, {"image_and_mask": x.numpy()})
        with torch.no_grad():
            expected = g(x).numpy()
        assert y.shape == (2, 3, h, w)
        assert float(np.abs(y - expected).max()) < 1e-4
