"""DeblurGAN: KupynOrest/DeblurGAN's key layout, the camera-shake kernels and the blurred/sharp
pairs, the recipe's steps (n_critic critic updates, then G), resume, the evaluation and the
served generator's export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from bench.metrics import psnr_y as cv2_psnr_y
from bench.metrics import ssim_y as cv2_ssim_y
from gantry.core.errors import InvalidInput
from gantry.core.training import CONFIG_TYPES, DeblurGANConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.deblurgan import DeblurGANGenerator
from trainer.catalog import card
from trainer.data import build_dataset, collate
from trainer.data.blur import (
    NATURAL_PHOTOS,
    MotionBlurPhotos,
    blur_valid,
    is_held_aside,
    kernel_geometry,
    random_kernel,
    random_trajectory,
    rasterise,
)
from trainer.evaluation import psnr_y, restoration_figures, ssim_y
from trainer.export.onnx import check_parity, export_onnx
from trainer.export.probes import probe_inputs
from trainer.loop import GENERATOR_FILE, train
from trainer.losses import vgg19_features
from trainer.recipes import RECIPES
from trainer.recipes.deblurgan import DeblurGANRecipe

# Two critic updates per G update keep the steps short; 64 px crops, batch 2.
SMALL = {**SMALL_RUN, "n_critic": 2}


def _config(**overrides: Any) -> DeblurGANConfig:
    config = load_train_config("deblurgan-photos", {**SMALL, **overrides})
    assert isinstance(config, DeblurGANConfig)
    return config


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- KupynOrest/DeblurGAN's layout -----------------------------------------------------------
# Written out by hand from models/networks.py (ResnetGenerator, ResnetBlock with dropout,
# NLayerDiscriminator) with the training defaults: resnet_9blocks, instance norm, ngf/ndf 64.


def test_the_full_generator_has_deblurgans_keys_and_shapes() -> None:
    with torch.device("meta"):
        g = build_network("deblurgan_resnet9")
    expected: dict[str, tuple[int, ...]] = {
        "model.1.weight": (64, 3, 7, 7),
        "model.1.bias": (64,),
        "model.4.weight": (128, 64, 3, 3),
        "model.4.bias": (128,),
        "model.7.weight": (256, 128, 3, 3),
        "model.7.bias": (256,),
    }
    for block in range(10, 19):  # nine blocks: pad, conv, norm, ReLU, dropout, pad, conv, norm
        for conv in (1, 6):
            expected[f"model.{block}.conv_block.{conv}.weight"] = (256, 256, 3, 3)
            expected[f"model.{block}.conv_block.{conv}.bias"] = (256,)
    expected |= {
        "model.19.weight": (256, 128, 3, 3),  # ConvTranspose2d: (in, out, k, k)
        "model.19.bias": (128,),
        "model.22.weight": (128, 64, 3, 3),
        "model.22.bias": (64,),
        "model.26.weight": (3, 64, 7, 7),
        "model.26.bias": (3,),
    }
    assert _shapes(g) == expected  # no norm keys: InstanceNorm2d(affine=False)
    assert sum(p.numel() for p in g.parameters()) == 11_378_179
    assert isinstance(g, DeblurGANGenerator)
    dropouts = [m for m in g.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 9 and all(m.p == 0.5 for m in dropouts)
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 5 + 18 and not any(m.affine or m.track_running_stats for m in norms)
    convt = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.output_padding for m in convt] == [(1, 1), (1, 1)]


def test_the_full_critic_has_deblurgans_keys_and_shapes() -> None:
    with torch.device("meta"):
        d = build_network("deblurgan_critic")
    assert _shapes(d) == {
        "model.0.weight": (64, 3, 4, 4),  # the image alone: an unconditional critic
        "model.0.bias": (64,),
        "model.2.weight": (128, 64, 4, 4),
        "model.2.bias": (128,),  # instance norm: the convs keep their biases
        "model.5.weight": (256, 128, 4, 4),
        "model.5.bias": (256,),
        "model.8.weight": (512, 256, 4, 4),
        "model.8.bias": (512,),
        "model.11.weight": (1, 512, 4, 4),
        "model.11.bias": (1,),
    }
    assert sum(p.numel() for p in d.parameters()) == 2_764_737
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())  # WGAN scores


def test_the_generator_adds_its_residual_to_the_input_and_clamps() -> None:
    torch.manual_seed(0)
    g = build_network("deblurgan_tiny").eval()
    assert isinstance(g, DeblurGANGenerator)
    assert sum(p.numel() for p in g.parameters()) == 272_515
    x = torch.rand(2, 3, 36, 52) * 2 - 1
    with torch.no_grad():
        residual = g.model(x)
        y = g(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1
    assert torch.equal(y, torch.clamp(x + residual, -1, 1))
    assert bool(((x + residual).abs() > 1).any())  # the clamp does something
    # A network whose residual is zero returns its input: the global skip.
    g.zero_residual_()  # identity_init
    with torch.no_grad():
        assert torch.equal(g(x), x)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 3, 30, 32))


# --- kernels and pairs ---------------------------------------------------------------------


def test_trajectories_keep_their_length_and_are_seeded() -> None:
    path = random_trajectory(np.random.default_rng(3), max_len=15.0, expl=0.005)
    assert path.shape == (2000,) and path[0] == 0
    assert float(np.abs(np.diff(path)).sum()) == pytest.approx(15.0, rel=1e-9)  # fixed speed
    again = random_trajectory(np.random.default_rng(3), max_len=15.0, expl=0.005)
    other = random_trajectory(np.random.default_rng(4), max_len=15.0, expl=0.005)
    assert np.array_equal(path, again) and not np.allclose(path, other)
    with pytest.raises(ValueError, match="expl > 0"):
        random_trajectory(np.random.default_rng(0), max_len=15.0, expl=0.0)


def test_kernels_are_normalised_non_negative_seeded_and_grow_with_exposure() -> None:
    geometry = kernel_geometry(64)
    assert (geometry.max_len, geometry.canvas) == (15.0, 19)  # DeblurGAN's 60 / 64 at 256 px
    assert kernel_geometry(256).canvas % 2 == 1
    kernels = [random_kernel(np.random.default_rng(seed), geometry) for seed in range(6)]
    for k in kernels:
        assert k.shape == (19, 19)
        assert float(k.sum()) == pytest.approx(1.0, abs=1e-12) and float(k.min()) >= 0
        assert (k > 0).sum() >= 4  # sub-pixel positions spread over neighbouring pixels
    again = random_kernel(np.random.default_rng(0), geometry)
    assert np.array_equal(kernels[0], again)
    assert all(not np.allclose(kernels[0], k) for k in kernels[1:])
    # A tenth of the exposure integrates a tenth of the path: a smaller kernel.
    path = random_trajectory(np.random.default_rng(7), max_len=15.0, expl=0.003)
    full, short = rasterise(path, 19, 1.0), rasterise(path, 19, 0.1)
    assert (short > 0).sum() < (full > 0).sum()
    with pytest.raises(ValueError, match="exposure"):
        rasterise(path, 19, 0.0)


def test_a_valid_convolution_keeps_brightness_and_a_centred_delta_keeps_the_image() -> None:
    rng = np.random.default_rng(0)
    region = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    delta = np.zeros((9, 9))
    delta[4, 4] = 1.0
    out = blur_valid(region, delta)
    assert out.shape == (32, 32, 3)
    assert np.array_equal(out, region[4:36, 4:36].astype(np.float32))
    flat = np.full((40, 40, 3), 200, np.uint8)
    blurred = blur_valid(flat, random_kernel(rng, kernel_geometry(32)))
    assert np.allclose(blurred, 200, atol=1e-3)  # the kernel sums to 1
    # Convolution, not correlation: a kernel at (0, 0) takes the pixel k-1 down and right.
    corner = np.zeros((9, 9))
    corner[0, 0] = 1.0
    assert np.array_equal(blur_valid(region, corner), region[8:40, 8:40].astype(np.float32))


@pytest.fixture(scope="module")
def photos() -> tuple[MotionBlurPhotos, MotionBlurPhotos]:
    train_set = build_dataset("motion_blur_photos", DATA, "train", 64)
    val = build_dataset("motion_blur_photos", DATA, "val", 64)
    assert isinstance(train_set, MotionBlurPhotos) and isinstance(val, MotionBlurPhotos)
    return train_set, val


def test_the_held_aside_photos_are_fixed_by_name_and_never_trained_on(
    photos: tuple[MotionBlurPhotos, MotionBlurPhotos],
) -> None:
    train_set, val = photos
    assert (len(train_set), len(val)) == (215, 33)  # 248 photos, one in eight by hash
    assert not set(train_set.names) & set(val.names)
    assert all(is_held_aside(n) for n in val.names)
    assert not any(is_held_aside(n) for n in train_set.names)
    assert val.names[:2] == ["bsd68_color/108070.png", "bsd68_color/19021.png"]
    assert {n.split("/")[0] for n in val.names} == {"bsd68_color", "sun_hays80", "urban100_half"}
    assert (DATA / NATURAL_PHOTOS / val.names[0]).is_file()


def test_pairs_are_seeded_blurred_and_aligned(
    photos: tuple[MotionBlurPhotos, MotionBlurPhotos],
) -> None:
    train_set, val = photos
    pair = train_set.pair(5, seed=11)
    assert set(pair) == {"blurred", "sharp"}
    assert pair["blurred"].shape == pair["sharp"].shape == (3, 64, 64)
    for image in pair.values():
        assert float(image.min()) >= -1 and float(image.max()) <= 1
    levels = (pair["blurred"] + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # rounded to 8 bits
    again, other = train_set.pair(5, seed=11), train_set.pair(5, seed=12)
    assert all(torch.equal(pair[k], again[k]) for k in pair)
    assert not torch.equal(pair["blurred"], other["blurred"])

    # Blur lowers the contrast between neighbouring pixels; the mean stays close.
    def roughness(x: torch.Tensor) -> float:
        return float((x[:, :, 1:] - x[:, :, :-1]).abs().mean())

    assert roughness(pair["blurred"]) < roughness(pair["sharp"])
    assert abs(float(pair["blurred"].mean() - pair["sharp"].mean())) < 0.05
    flipped = train_set.pair(5, seed=11, flip=True)
    assert not torch.equal(flipped["sharp"], pair["sharp"])
    # Training samples draw their seed from the global generator the loop seeds per step.
    torch.manual_seed(3)
    first = train_set.sample(5)
    torch.manual_seed(3)
    assert torch.equal(train_set.sample(5)["blurred"], first["blurred"])
    assert not torch.equal(train_set.sample(5)["blurred"], first["blurred"])  # next draw
    # Held-aside pairs are the same whatever the generator's state.
    torch.manual_seed(0)
    fixed = val.sample(2)
    torch.manual_seed(1)
    assert torch.equal(val.sample(2)["blurred"], fixed["blurred"])


# --- evaluation figures ----------------------------------------------------------------------


def _uint8(image: torch.Tensor) -> np.ndarray[Any, Any]:
    levels = torch.clamp(torch.floor((image + 1) * 127.5 + 0.5), 0, 255)
    return levels.to(torch.uint8).permute(1, 2, 0).numpy()


def test_psnr_and_ssim_on_luma_match_the_benchmarks_opencv_figures(
    photos: tuple[MotionBlurPhotos, MotionBlurPhotos],
) -> None:
    _, val = photos
    pairs = collate([val.sample(i) for i in range(3)])
    blurred, sharp = pairs["blurred"], pairs["sharp"]
    psnr, ssim = psnr_y(blurred, sharp), ssim_y(blurred, sharp)
    for i in range(3):
        a, b = _uint8(blurred[i]), _uint8(sharp[i])
        assert float(psnr[i]) == pytest.approx(cv2_psnr_y(a, b, 0), abs=1e-6)
        assert float(ssim[i]) == pytest.approx(cv2_ssim_y(a, b, 0), abs=1e-6)
    figures = restoration_figures(sharp * 0.5 + blurred * 0.5, blurred, sharp)
    assert set(figures) == {"val_psnr", "val_ssim", "val_psnr_blurred", "val_ssim_blurred"}
    assert figures["val_psnr"] > figures["val_psnr_blurred"]  # halfway to the truth
    assert figures["val_ssim"] > figures["val_ssim_blurred"]
    assert 10 < figures["val_psnr_blurred"] < 40 and 0 < figures["val_ssim_blurred"] < 1
    with pytest.raises(ValueError, match="restored exactly"):
        restoration_figures(sharp, blurred, sharp)


# --- the recipe -----------------------------------------------------------------------------


def _recipe(config: DeblurGANConfig) -> DeblurGANRecipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("deblurgan")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, DeblurGANRecipe)
    recipe.build()
    return recipe


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def test_each_step_updates_the_critic_n_critic_times_then_g_and_every_weight_moves() -> None:
    recipe = _recipe(_config(n_critic=3))
    assert recipe.generator_key == "generator" and set(recipe.networks) == {
        "generator",
        "critic",
    }
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    critic_steps, g_steps = [], []
    for step in range(2):
        torch.manual_seed(step)
        batch = collate([dataset.sample(i) for i in (2 * step, 2 * step + 1)])
        losses = recipe.train_step(batch, step)
        critic_steps.append(_adam_steps(recipe.optimizers["critic"]))
        g_steps.append(_adam_steps(recipe.optimizers["generator"]))
        assert set(losses) == {"d_adv", "d_gp", "g_adv", "g_content"}
        assert all(np.isfinite(v) for v in losses.values())
        assert losses["d_gp"] > 0
        assert 0 < losses["g_content"] < 1  # pixel L1 of [-1, 1] images
    assert (critic_steps, g_steps) == ([3, 6], [1, 2])
    for name, network in recipe.networks.items():
        assert all(p.requires_grad for p in network.parameters())
        kept = {n for n, p in network.named_parameters() if torch.equal(p, before[name][n])}
        # The critic's last bias adds the same to real and fake scores: the Wasserstein
        # estimate E[C(fake)] - E[C(real)] and the penalty (a gradient) do not see it.
        assert kept == ({"model.11.bias"} if name == "critic" else set()), name
    assert any("pixel L1 x100" in note for note in recipe.notes)


def test_a_vgg19_file_makes_the_content_loss_deblurgans_conv3_3_loss(tmp_path: Path) -> None:
    torch.manual_seed(0)
    # Not ImageNet weights (none are here): the file only has to have VGG19's layout.
    weights = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, weights)
    recipe = _recipe(_config(perceptual_weights=str(weights)))
    assert recipe.perceptual is not None and recipe.perceptual.layer_weights == {"conv3_3": 1.0}
    assert any("vgg perceptual loss on: conv3_3=1" in note for note in recipe.notes)
    restored, sharp = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(recipe.content_loss(restored, sharp)) != pytest.approx(
        float((restored - sharp).abs().mean())
    )
    with pytest.raises(InvalidInput, match="perceptual_weights"):
        load_train_config("deblurgan-photos", {"perceptual_weights": 3})


def test_identity_init_starts_g_as_the_identity_and_needs_a_deblurgan_generator() -> None:
    recipe = _recipe(_config())
    blurred = recipe._val["blurred"]
    with torch.no_grad():
        assert torch.equal(recipe.networks["generator"].eval()(blurred), blurred)
    upstream = _recipe(_config(identity_init=False))
    with torch.no_grad():
        assert not torch.allclose(upstream.networks["generator"].eval()(blurred), blurred)
    config = _config(generator="cyclegan_resnet_tiny")
    with pytest.raises(TypeError, match="identity_init needs a DeblurGAN generator"):
        RECIPES.get("deblurgan")(config, data_dir=DATA, device=torch.device("cpu")).build()


def test_a_dataset_without_blurred_pairs_is_refused() -> None:
    config = _config(**{"data.dataset": "cmp_facades"})
    recipe = RECIPES.get("deblurgan")(config, data_dir=DATA, device=torch.device("cpu"))
    with pytest.raises(TypeError, match="blurred/sharp pairs"):
        recipe.build()


def test_the_shipped_config_has_deblurgans_defaults_and_a_short_build() -> None:
    config = load_train_config("deblurgan-photos")
    assert isinstance(config, DeblurGANConfig) and CONFIG_TYPES.get("deblurgan") is DeblurGANConfig
    assert (config.lambda_gp, config.n_critic, config.lambda_content) == (10, 5, 100)
    assert (config.optim.lr, config.optim.beta1, config.optim.beta2) == (1e-4, 0.5, 0.999)
    assert (config.generator, config.critic) == ("deblurgan_tiny", "deblurgan_critic_tiny")
    assert (config.data.dataset, config.data.size) == ("motion_blur_photos", 64)
    assert config.perceptual_weights is None and config.identity_init
    assert config.publish == "deblurgan-photos"
    assert config.build_steps is not None and config.build_steps < config.steps
    with pytest.raises(InvalidInput, match="n_critic"):
        load_train_config("deblurgan-photos", {"n_critic": 0})


# --- runs and resume -------------------------------------------------------------------------


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(_config(steps=4), straight, data_dir=DATA, device="cpu")
    train(_config(steps=2, checkpoint_every=2), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=4), resumed, data_dir=DATA, device="cpu")

    assert (again.resumed_from, again.step) == (2, 4)
    a = checkpointing.load(straight / "checkpoints" / "step-000004.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000004.pt")
    for name in ("generator", "critic"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    assert int(a["optimizers"]["critic"]["state"][0]["step"]) == 8  # n_critic 2
    assert int(a["optimizers"]["generator"]["state"][0]["step"]) == 4
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    assert exported.keys() == a["networks"]["generator"].keys()
    assert result.generator_architecture == "deblurgan_tiny"
    assert result.metrics == again.metrics and result.metrics_at_init == again.metrics_at_init
    for figures in (result.metrics_at_init, result.metrics):
        assert set(figures) == {"val_psnr", "val_ssim", "val_psnr_blurred", "val_ssim_blurred"}
        assert 5 < figures["val_psnr"] < 50 and -1 < figures["val_ssim"] <= 1
        assert 15 < figures["val_psnr_blurred"] < 35 and 0 < figures["val_ssim_blurred"] < 1
    # The baseline is the same held-aside pairs at init and at the end; identity_init starts
    # G as the identity, so at init it scores exactly what the blurred input scores.
    assert result.metrics["val_psnr_blurred"] == result.metrics_at_init["val_psnr_blurred"]
    init = result.metrics_at_init
    assert (init["val_psnr"], init["val_ssim"]) == (
        init["val_psnr_blurred"],
        init["val_ssim_blurred"],
    )
    assert result.metrics["val_psnr"] != init["val_psnr"]
    assert any("pixel L1" in note for note in result.notes)
    assert set(result.last_losses) == {"d_adv", "d_gp", "g_adv", "g_content"}


# --- served ---------------------------------------------------------------------------------


def test_the_generator_exports_with_dynamic_size_and_passes_the_parity_gate(
    tmp_path: Path,
) -> None:
    torch.manual_seed(1)
    model_card = card("deblurgan-photos")
    assert model_card.task == "deblur" and model_card.weights.research_only
    g = build_network(model_card.architecture, **model_card.arch_kwargs).eval()
    path = export_onnx(g, model_card, tmp_path / "model.onnx")
    probes = probe_inputs(model_card, DATA)
    report = check_parity(g, path, model_card, probes, tolerance=1e-4)
    assert report.max_abs_err < 1e-4 and len(report.images) == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((36, 52), (64, 128)):
        x = torch.rand(2, 3, h, w) * 2 - 1
        (y,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            expected = g(x).numpy()
        assert y.shape == (2, 3, h, w)
        assert float(np.abs(y - expected).max()) < 1e-3
