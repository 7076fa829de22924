"""SRGAN / ESRGAN: the networks' key layouts, Real-ESRGAN's degradations and the LR/HR pairs,
the RaGAN loss on a hand example, both recipes' stages (steps, resume, initialisation),
the figures, network interpolation, and the SRResNet export."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from gantry.core.cards import SuperresSpec
from gantry.core.errors import InvalidInput, NotFound
from gantry.core.training import (
    CONFIG_TYPES,
    ESRGANConfig,
    SRGANConfig,
    SuperResolutionConfig,
    load_train_config,
)
from tests.paths import DATA
from tests.training import SMALL_RUN
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.srresnet import SRResNet
from trainer.catalog import card
from trainer.catalog.superres import trained_superres_card
from trainer.data import build_dataset, collate
from trainer.data.blur import NATURAL_PHOTOS, is_held_aside
from trainer.data.degradations import (
    FIRST_ORDER,
    FIRST_ORDER_ONLY,
    REALESRGAN_X4PLUS,
    SECOND_ORDER,
    BlurSettings,
    bivariate_kernel,
    degrade,
    random_blur_kernel,
    sinc_kernel,
)
from trainer.data.superres import SuperResolutionPhotos
from trainer.evaluation import bicubic_upscale, gradient_energy, superres_figures
from trainer.export.onnx import check_parity, export_onnx
from trainer.export.probes import probe_inputs
from trainer.export.repository import BuildOptions
from trainer.interpolation import (
    Generator,
    interpolate,
    interpolate_state_dicts,
    publish_interpolation,
)
from trainer.loop import GENERATOR_FILE, train
from trainer.losses import build_gan_loss
from trainer.recipes import RECIPES
from trainer.recipes.superres import SuperResolutionRecipe
from trainer.weights.errors import WeightImportError
from trainer.weights.loader import load_weights

# 64 px HR crops (16 px LR), two pairs a step, four held aside.
SMALL: dict[str, Any] = {**SMALL_RUN, "data.size": 64}


def _config(name: str, **overrides: Any) -> SuperResolutionConfig:
    config = load_train_config(name, {**SMALL, **overrides})
    assert isinstance(config, SuperResolutionConfig)
    return config


def _recipe(config: SuperResolutionConfig) -> SuperResolutionRecipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get(config.recipe)(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, SuperResolutionRecipe)
    recipe.build()
    return recipe


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


# --- networks --------------------------------------------------------------------------------


def test_srresnet_has_the_papers_layout_and_upscales_by_pixel_shuffle() -> None:
    with torch.device("meta"):
        g = build_network("srresnet_x4")
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert shapes["conv_first.weight"] == (64, 3, 9, 9)
    assert shapes["prelu_first.weight"] == (64,)
    assert shapes["body.15.conv1.weight"] == (64, 64, 3, 3) and "body.16.conv1.weight" not in shapes
    assert shapes["body.0.bn1.running_mean"] == (64,) and shapes["body.0.prelu.weight"] == (64,)
    assert shapes["bn_body.weight"] == (64,)
    assert shapes["upsample.0.conv.weight"] == (256, 64, 3, 3)  # 4x channels, then shuffle
    assert shapes["upsample.1.prelu.weight"] == (64,) and "upsample.2.conv.weight" not in shapes
    assert shapes["conv_last.weight"] == (3, 64, 9, 9)
    tiny = build_network("srresnet_x4_tiny").eval()
    x = torch.rand(2, 3, 12, 20)
    with torch.no_grad():
        y = tiny(x)
        bilinear = torch.nn.functional.interpolate(x, scale_factor=4.0, mode="bilinear")
    assert y.shape == (2, 3, 48, 80)
    # The zeroed last conv makes an untrained tiny SRResNet the bilinear upsampling.
    assert torch.allclose(y, bilinear, atol=1e-6)
    with pytest.raises(ValueError, match="powers of two"):
        SRResNet(scale=3)


def test_the_vgg_discriminator_has_basicsrs_keys_and_judges_its_size() -> None:
    with torch.device("meta"):
        d = build_network("vgg_discriminator")
    shapes = {k: tuple(v.shape) for k, v in d.state_dict().items()}
    # BasicSR VGGStyleDiscriminator (num_in_ch 3, num_feat 64, input_size 128).
    assert shapes["conv0_0.weight"] == (64, 3, 3, 3) and "conv0_0.bias" in shapes
    assert shapes["conv0_1.weight"] == (64, 64, 4, 4) and "conv0_1.bias" not in shapes
    assert "bn0_0.weight" not in shapes and shapes["bn0_1.weight"] == (64,)
    assert shapes["conv4_1.weight"] == (512, 512, 4, 4) and shapes["bn4_1.weight"] == (512,)
    assert shapes["linear1.weight"] == (100, 512 * 4 * 4)
    assert shapes["linear2.weight"] == (1, 100)
    small = build_network("vgg_discriminator_tiny", input_size=64)
    assert small(torch.rand(3, 3, 64, 64)).shape == (3, 1)
    with pytest.raises(ValueError, match="64 px"):
        small(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="multiple of 32"):
        build_network("vgg_discriminator_tiny", input_size=48)


def test_the_tiny_rrdbnet_keeps_the_x4plus_keys() -> None:
    with torch.device("meta"):
        full, tiny = build_network("realesrgan_x4plus"), build_network("rrdbnet_x4_tiny")
    full_keys = {k for k in full.state_dict() if not k.startswith("body.")}
    tiny_keys = {k for k in tiny.state_dict() if not k.startswith("body.")}
    assert full_keys == tiny_keys
    assert {k.split(".", 2)[2] for k in tiny.state_dict() if k.startswith("body.1.")} == {
        k.split(".", 2)[2] for k in full.state_dict() if k.startswith("body.1.")
    }


# --- degradations ----------------------------------------------------------------------------


def test_kernels_sum_to_one_and_have_their_shapes() -> None:
    gaussian = bivariate_kernel(21, 2.0, 2.0, 0.0)
    assert gaussian.shape == (21, 21) and math.isclose(gaussian.sum(), 1.0)
    assert np.allclose(gaussian, gaussian.T) and gaussian.argmax() == 21 * 10 + 10
    # A generalized Gaussian with beta 1 is the Gaussian; a plateau kernel has a flatter top.
    assert np.allclose(bivariate_kernel(21, 2.0, 2.0, 0.0, shape="generalized", beta=1.0), gaussian)
    plateau = bivariate_kernel(21, 2.0, 2.0, 0.0, shape="plateau", beta=2.0)
    assert plateau[10, 11] / plateau[10, 10] > gaussian[10, 11] / gaussian[10, 10]
    aniso = bivariate_kernel(21, 3.0, 0.5, 0.0)  # wide in x, narrow in y
    assert aniso[10, 14] > aniso[14, 10]
    sinc = sinc_kernel(13, math.pi / 2)
    assert math.isclose(sinc.sum(), 1.0) and sinc.min() < 0  # ringing lobes
    rng = np.random.default_rng(0)
    for _ in range(50):
        kernel = random_blur_kernel(rng, BlurSettings())
        assert kernel.shape[0] % 2 == 1 and 7 <= kernel.shape[0] <= 21
        assert math.isclose(kernel.sum(), 1.0, rel_tol=1e-9)


def test_the_settings_are_real_esrgans_x4plus_options() -> None:
    assert FIRST_ORDER.blur.probabilities == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    assert (FIRST_ORDER.blur.sigma, FIRST_ORDER.blur.sinc_prob) == ((0.2, 3.0), 0.1)
    assert (FIRST_ORDER.resize_prob, FIRST_ORDER.resize_range) == ((0.2, 0.7, 0.1), (0.15, 1.5))
    assert (FIRST_ORDER.noise_range, FIRST_ORDER.poisson_scale_range) == ((1, 30), (0.05, 3))
    assert (FIRST_ORDER.gray_noise_prob, FIRST_ORDER.jpeg_range) == (0.4, (30, 95))
    assert (SECOND_ORDER.blur_prob, SECOND_ORDER.blur.sigma) == (0.8, (0.2, 1.5))
    assert (SECOND_ORDER.resize_prob, SECOND_ORDER.resize_range) == ((0.3, 0.4, 0.3), (0.3, 1.2))
    assert (SECOND_ORDER.noise_range, SECOND_ORDER.poisson_scale_range) == ((1, 25), (0.05, 2.5))
    assert REALESRGAN_X4PLUS.second is SECOND_ORDER and REALESRGAN_X4PLUS.final_sinc_prob == 0.8


@pytest.fixture(scope="module")
def hr() -> torch.Tensor:
    photo = sorted((DATA / NATURAL_PHOTOS).rglob("*.png"))[0]
    with Image.open(photo) as im:
        array = np.asarray(im.convert("RGB"))[:64, :96]
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).float() / 255


def test_degradation_is_deterministic_per_seed_sized_and_8_bit(hr: torch.Tensor) -> None:
    a = degrade(hr, np.random.default_rng(7))
    b = degrade(hr, np.random.default_rng(7))
    c = degrade(hr, np.random.default_rng(8))
    assert a.shape == (3, 16, 24) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(torch.round(a * 255) / 255, a)  # 8-bit levels
    with pytest.raises(ValueError, match="multiple of the scale"):
        degrade(hr[:, :63], np.random.default_rng(0))


def test_the_second_order_degrades_further(hr: torch.Tensor) -> None:
    # Over a few seeds, both orders lose more of the photo than the first alone does.
    def error(settings: Any) -> float:
        bicubic = torch.nn.functional.interpolate(hr[None], size=(16, 24), mode="area")[0]
        return float(
            np.mean(
                [
                    (degrade(hr, np.random.default_rng(s), settings) - bicubic).abs().mean()
                    for s in range(12)
                ]
            )
        )

    assert error(REALESRGAN_X4PLUS) > error(FIRST_ORDER_ONLY)


def test_pairs_split_by_name_are_seeded_and_aligned() -> None:
    train_set = build_dataset("bicubic_x4_photos", DATA, "train", 64)
    val = build_dataset("bicubic_x4_photos", DATA, "val", 64)
    assert isinstance(train_set, SuperResolutionPhotos) and isinstance(val, SuperResolutionPhotos)
    assert all(is_held_aside(n) for n in val.names) and not any(map(is_held_aside, train_set.names))
    first, again = val.sample(0), val.sample(0)
    assert first["lr"].shape == (3, 16, 16) and first["hr"].shape == (3, 64, 64)
    assert torch.equal(first["lr"], again["lr"]) and torch.equal(first["hr"], again["hr"])
    # Bicubic LR is PIL's antialiased bicubic of the 8-bit HR crop.
    levels = ((first["hr"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    expected = np.asarray(Image.fromarray(levels).resize((16, 16), Image.Resampling.BICUBIC))
    assert np.array_equal(((first["lr"] + 1) * 127.5).round().byte().permute(1, 2, 0), expected)
    torch.manual_seed(0)
    real = build_dataset("realesrgan_x4_photos", DATA, "train", 64).sample(3)
    torch.manual_seed(0)
    assert torch.equal(
        real["lr"], build_dataset("realesrgan_x4_photos", DATA, "train", 64).sample(3)["lr"]
    )
    assert real["lr"].shape == (3, 16, 16)


# --- losses and figures ------------------------------------------------------------------------


def test_the_relativistic_average_loss_on_a_hand_example() -> None:
    loss = build_gan_loss("relativistic_average")
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, -1.0])

    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    # D: real - E[fake] = (2, 0) should be real, fake - E[real] = (0, -2) fake.
    d_expected = (softplus(-2) + softplus(0)) / 2 + (softplus(0) + softplus(-2)) / 2
    # G: the other way round.
    g_expected = (softplus(2) + softplus(0)) / 2 + (softplus(0) + softplus(2)) / 2
    assert float(loss.discriminator(real, fake)) == pytest.approx(d_expected)
    assert float(loss.generator(fake, real)) == pytest.approx(g_expected)
    # Signs: D's loss grows and G's falls when the fakes look more real than the reals.
    assert float(loss.discriminator(fake, real)) > float(loss.discriminator(real, fake))
    assert float(loss.generator(real, fake)) < float(loss.generator(fake, real))
    # Only differences of logits count: a shift of every score changes nothing.
    assert float(loss.discriminator(real + 5, fake + 5)) == pytest.approx(d_expected)


def test_the_figures_shave_the_border_and_compare_with_bicubic() -> None:
    val = build_dataset("bicubic_x4_photos", DATA, "val", 64)
    batch = collate([val.sample(i) for i in range(3)])
    lr, hr = batch["lr"], batch["hr"]
    bicubic = bicubic_upscale(lr, 4)
    figures = superres_figures(bicubic, lr, hr, 4)
    assert figures["val_psnr"] == figures["val_psnr_bicubic"]
    assert 15 < figures["val_psnr"] < 40 and 0 < figures["val_sharpness_bicubic"] < 1
    # A flat image has no gradient energy; the truth is sharper than its bicubic.
    assert float(gradient_energy(torch.zeros(1, 3, 8, 8))[0]) == 0
    perfect = hr.clone()
    perfect[..., :4, :] = -1  # only the shaved border differs: still infinite PSNR
    with pytest.raises(ValueError, match="exactly"):
        superres_figures(perfect, lr, hr, 4)


# --- recipes -----------------------------------------------------------------------------------


def test_the_psnr_stage_trains_g_alone_on_the_pixel_loss() -> None:
    recipe = _recipe(_config("srresnet-photos"))
    assert set(recipe.networks) == {"generator"} and recipe.pixel is torch.nn.functional.mse_loss
    g = recipe.networks["generator"]
    before = {n: p.clone() for n, p in g.named_parameters()}
    dataset = recipe.train_dataset()
    for step in range(2):  # the zeroed last conv passes gradients on from the second step
        torch.manual_seed(step)
        losses = recipe.train_step(collate([dataset.sample(i) for i in (0, 1)]), step)
        assert set(losses) == {"g_pixel"} and 0 < losses["g_pixel"] < 1
    assert all(not torch.equal(p, before[n]) for n, p in g.named_parameters())


@pytest.mark.parametrize(
    ("name", "loss", "kept"),
    [
        ("srgan-photos", "nonsaturating", set()),
        ("esrgan-photos", "relativistic_average", {"linear2.bias"}),
    ],
)
def test_the_gan_stage_updates_g_then_d_and_every_weight_moves(
    name: str, loss: str, kept: set[str]
) -> None:
    recipe = _recipe(_config(name, init_weights=None))
    assert recipe.config.gan_loss == loss and set(recipe.networks) == {"generator", "discriminator"}
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    for step in range(2):
        torch.manual_seed(step)
        losses = recipe.train_step(collate([dataset.sample(i) for i in (0, 1)]), step)
        assert set(losses) == {"g_pixel", "g_adv", "d_adv"}
        assert all(np.isfinite(v) for v in losses.values())
    assert _adam_steps(recipe.optimizers["generator"]) == 2
    assert _adam_steps(recipe.optimizers["discriminator"]) == 2
    for network_name, network in recipe.networks.items():
        assert all(p.requires_grad for p in network.parameters())
        same = {n for n, p in network.named_parameters() if torch.equal(p, before[network_name][n])}
        # RaGAN compares D's scores with each other's mean: D's last bias cancels out.
        assert same == (kept if network_name == "discriminator" else set()), network_name
    assert any("perceptual loss off" in note for note in recipe.notes)


def test_the_gan_stage_starts_from_the_psnr_runs_weights(tmp_path: Path) -> None:
    psnr = train(
        _config("esrgan-photos-psnr", steps=2), tmp_path / "psnr", data_dir=DATA, device="cpu"
    )
    # A relative init_weights is a run of the same checkpoint directory.
    config = _config("esrgan-photos", init_weights="psnr/generator.pth")
    recipe = RECIPES.get("esrgan")(
        config, data_dir=DATA, device=torch.device("cpu"), run_dir=tmp_path / "gan"
    )
    recipe.build()
    saved = torch.load(Path(psnr.run_dir) / GENERATOR_FILE, weights_only=True)
    state = recipe.networks["generator"].state_dict()
    assert all(torch.equal(state[k], saved[k]) for k in saved)
    with pytest.raises(WeightImportError, match="not a file"):
        _recipe(_config("esrgan-photos", init_weights=str(tmp_path / "missing.pth")))
    with pytest.raises(WeightImportError, match="do not fit"):
        _recipe(_config("srgan-photos", init_weights=str(Path(psnr.run_dir) / GENERATOR_FILE)))
    with pytest.raises(WeightImportError, match="realesrgan_x4plus"):
        _recipe(_config("esrgan-photos", init_weights=None, init_model="realesrgan-x4plus"))
    with pytest.raises(InvalidInput, match="not both"):
        _config("esrgan-photos", init_model="realesrgan-x4plus")


def test_the_finetune_config_starts_from_the_served_x4plus_on_real_esrgan_degradations() -> None:
    config = _config("realesrgan-x4plus-finetune", **{"data.val_images": 1})
    assert isinstance(config, ESRGANConfig) and config.publish == "realesrgan-x4plus"
    assert (config.lambda_pixel, config.lambda_adv, config.gan_loss) == (1.0, 0.1, "nonsaturating")
    assert config.data.dataset == "realesrgan_x4_photos" and config.ema_decay == 0.999
    recipe = _recipe(config)
    served = load_weights(card("realesrgan-x4plus"))
    state = recipe.networks["generator"].state_dict()
    assert all(torch.equal(state[k], served[k]) for k in served)
    # photos_dir points the dataset at another folder (here: the Set5 HR images).
    set5 = DATA / "superres" / "Set5" / "HR"
    elsewhere = config.model_copy(update={"photos_dir": set5})
    other = RECIPES.get("esrgan")(elsewhere, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(other, SuperResolutionRecipe)
    dataset = other._dataset("train", 64)
    assert isinstance(dataset, SuperResolutionPhotos)
    names = {p.name for p in set5.glob("*.png")}
    assert set(dataset.names) == {n for n in names if not is_held_aside(n)}


def test_the_shipped_configs_have_the_papers_defaults() -> None:
    srgan = load_train_config("srgan-photos")
    assert isinstance(srgan, SRGANConfig) and CONFIG_TYPES.get("srgan") is SRGANConfig
    assert (srgan.stage, srgan.pixel_loss, srgan.gan_loss, srgan.lambda_adv) == (
        "gan", "mse", "nonsaturating", 1e-3,
    )  # fmt: skip
    assert (srgan.generator, srgan.discriminator) == ("srresnet_x4_tiny", "vgg_discriminator_tiny")
    esrgan = load_train_config("esrgan-photos")
    assert isinstance(esrgan, ESRGANConfig) and esrgan.gan_loss == "relativistic_average"
    assert (esrgan.lambda_pixel, esrgan.lambda_adv, esrgan.optim.beta2) == (1e-2, 2.5e-3, 0.99)
    for name in ("srresnet-photos", "esrgan-photos-psnr"):
        psnr = load_train_config(name)
        assert isinstance(psnr, SuperResolutionConfig) and psnr.stage == "psnr"
        assert psnr.data.dataset == "bicubic_x4_photos" and psnr.data.size == 128
    with pytest.raises(InvalidInput, match="multiple of 32"):
        load_train_config("srgan-photos", {"data.size": 48})


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    for name in ("srgan-photos", "esrgan-photos-psnr"):
        straight, resumed = tmp_path / f"{name}-straight", tmp_path / f"{name}-resumed"
        over = {"init_weights": None} if name == "srgan-photos" else {}
        result = train(_config(name, steps=4, **over), straight, data_dir=DATA, device="cpu")
        train(
            _config(name, steps=2, checkpoint_every=2, **over), resumed, data_dir=DATA, device="cpu"
        )
        again = train(_config(name, steps=4, **over), resumed, data_dir=DATA, device="cpu")
        assert (again.resumed_from, again.step) == (2, 4)
        a = checkpointing.load(straight / "checkpoints" / "step-000004.pt")
        b = checkpointing.load(resumed / "checkpoints" / "step-000004.pt")
        for network in a["networks"]:
            sa, sb = a["networks"][network], b["networks"][network]
            assert all(torch.equal(sa[k], sb[k]) for k in sa), (name, network)
        assert result.metrics == again.metrics
        assert set(result.metrics) == {
            f"val_{f}{s}" for f in ("psnr", "ssim", "sharpness") for s in ("", "_bicubic")
        }
        assert result.metrics["val_psnr"] != result.metrics_at_init["val_psnr"]


# --- interpolation and export ----------------------------------------------------------------


def test_interpolation_blends_a_and_b_and_refuses_other_networks() -> None:
    torch.manual_seed(0)
    a, b = build_network("srresnet_x4_tiny"), build_network("srresnet_x4_tiny")
    for p in b.parameters():
        torch.nn.init.normal_(p)
    sa, sb = a.state_dict(), b.state_dict()
    one = interpolate_state_dicts(sa, sb, 1.0)
    zero = interpolate_state_dicts(sa, sb, 0.0)
    half = interpolate_state_dicts(sa, sb, 0.5)
    assert all(torch.equal(one[k], sa[k]) for k in sa)
    assert all(torch.equal(zero[k], sb[k]) for k in sa if sa[k].is_floating_point())
    key = "body.0.conv1.weight"
    assert torch.allclose(half[key], (sa[key] + sb[key]) / 2)
    assert torch.equal(half["body.0.bn1.num_batches_tracked"], sa["body.0.bn1.num_batches_tracked"])
    with pytest.raises(InvalidInput, match="alpha"):
        interpolate_state_dicts(sa, sb, 1.5)
    other = build_network("rrdbnet_x4_tiny").state_dict()
    with pytest.raises(InvalidInput, match="same architecture"):
        interpolate(
            Generator("A", "srresnet_x4_tiny", sa, {}),
            Generator("B", "rrdbnet_x4_tiny", other, {}),
            0.5,
        )
    wider = SRResNet(num_feat=48, num_block=4, upsample_skip=True).state_dict()
    with pytest.raises(InvalidInput, match=r"conv_first\.weight"):
        interpolate_state_dicts(sa, wider, 0.5)
    with pytest.raises(InvalidInput, match="different parameters"):
        interpolate_state_dicts(sa, {k: v for k, v in sa.items() if k != key}, 0.5)


def test_srresnet_exports_with_dynamic_size_and_passes_the_parity_gate(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model_card = trained_superres_card(
        "srresnet-test", "srresnet_x4_tiny", scale=4, description="", source="test"
    )
    assert model_card.task == "superres" and model_card.weights.research_only
    g = build_network(model_card.architecture).eval()
    assert isinstance(g, SRResNet)
    torch.nn.init.normal_(g.conv_last.weight, std=0.01)  # not only the bilinear skip
    for module in g.modules():  # running statistics away from the defaults
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = export_onnx(g, model_card, tmp_path / "model.onnx")
    report = check_parity(g, path, model_card, probe_inputs(model_card, DATA), tolerance=1e-4)
    assert report.max_abs_err < 1e-4 and len(report.images) == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((12, 20), (32, 48)):
        x = torch.rand(2, 3, h, w)
        (y,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            expected = g(x).numpy()
        assert y.shape == (2, 3, 4 * h, 4 * w)
        assert float(np.abs(y - expected).max()) < 1e-4


def test_a_blend_publishes_through_the_parity_gate_as_a_new_model(tmp_path: Path) -> None:
    checkpoints, repository = tmp_path / "checkpoints", tmp_path / "repository"
    train(_config("srresnet-photos", steps=2), checkpoints / "psnr", data_dir=DATA, device="cpu")
    gan = _config("srgan-photos", steps=2, init_weights="psnr/generator.pth")
    train(gan, checkpoints / "gan", data_dir=DATA, device="cpu")
    options = BuildOptions(repository=repository, data_dir=DATA)
    kwargs: dict[str, Any] = {
        "options": options,
        "checkpoint_dir": checkpoints,
        "weights_dir": tmp_path / "blends",
    }
    first = publish_interpolation("psnr", "gan", alpha=0.8, name="blend", **kwargs)
    assert (first.version, first.card.task, first.card.architecture) == (
        1, "superres", "srresnet_x4_tiny",
    )  # fmt: skip
    assert isinstance(first.card.spec, SuperresSpec) and first.card.spec.scale == 4
    assert first.card.weights.research_only
    assert first.build.parity_max_abs_err < 1e-3 and "0.8 x psnr" in str(first.build.training_run)
    # A published version is a side too; the model keeps its card.
    second = publish_interpolation("blend:1", "gan", alpha=0.5, name="blend", **kwargs)
    assert second.version == 2 and second.card == first.card
    blended = torch.load(second.build.weights_file, weights_only=True)
    one = torch.load(first.build.weights_file, weights_only=True)
    g = torch.load(checkpoints / "gan" / GENERATOR_FILE, weights_only=True)
    key = "body.0.conv1.weight"
    assert torch.allclose(blended[key], 0.5 * one[key] + 0.5 * g[key], atol=1e-6)
    with pytest.raises(InvalidInput, match="realesrgan-x4plus serves realesrgan_x4plus"):
        publish_interpolation("psnr", "gan", alpha=0.5, name="realesrgan-x4plus", **kwargs)
    with pytest.raises(NotFound, match="no run or model named nothing"):
        publish_interpolation("psnr", "nothing", alpha=0.5, name="blend", **kwargs)
