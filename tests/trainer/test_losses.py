"""The GAN loss zoo: every registered adversarial loss, the penalties, pixel and VGG losses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.registry import UnknownNameError
from trainer.losses import (
    GAN_LOSSES,
    PERCEPTUAL_OFF_REASON,
    VGG19_CONV_LAYERS,
    GANLoss,
    L1Loss,
    MSELoss,
    PerceptualWeightsMissing,
    VGGPerceptualLoss,
    build_gan_loss,
    clip_weights,
    cycle_consistency,
    feature_matching,
    gradient_penalty,
    identity,
    perceptual_loss_or_none,
    r1_penalty,
    total_variation,
    vgg19_features,
    wgan_optimizer,
)
from trainer.weights.errors import WeightImportError

ALL_GAN_LOSSES = GAN_LOSSES.names()


def _logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _g_loss(loss: GANLoss, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return loss.generator(fake, real if loss.generator_needs_real else None)


# --- registry ---------------------------------------------------------------------------------


def test_registry_holds_the_six_formulations() -> None:
    assert ALL_GAN_LOSSES == [
        "hinge",
        "lsgan",
        "minimax",
        "nonsaturating",
        "relativistic_average",
        "wgan",
    ]


def test_unknown_gan_loss_lists_the_known_names() -> None:
    with pytest.raises(UnknownNameError, match="hinge, lsgan"):
        build_gan_loss("lsgam")


# --- properties every adversarial loss has ----------------------------------------------------


@pytest.mark.parametrize("name", ALL_GAN_LOSSES)
def test_gan_loss_is_finite_with_gradient_to_logits(name: str) -> None:
    loss = build_gan_loss(name)
    real = _logits(4, 1, 6, 6, seed=1).requires_grad_(True)
    fake = _logits(4, 1, 6, 6, seed=2).requires_grad_(True)

    d_loss = loss.discriminator(real, fake)
    assert d_loss.dim() == 0 and torch.isfinite(d_loss)
    d_loss.backward()
    assert real.grad is not None and real.grad.abs().sum() > 0
    assert fake.grad is not None and fake.grad.abs().sum() > 0

    fake.grad = None
    g_loss = _g_loss(loss, fake, real)
    assert g_loss.dim() == 0 and torch.isfinite(g_loss)
    g_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ALL_GAN_LOSSES)
def test_d_loss_is_lower_when_d_is_right(name: str) -> None:
    loss = build_gan_loss(name)
    high = 2.0 + 0.1 * _logits(8, 1, seed=3)
    low = -2.0 + 0.1 * _logits(8, 1, seed=4)
    assert loss.discriminator(high, low) < loss.discriminator(low, high)


@pytest.mark.parametrize("name", ALL_GAN_LOSSES)
def test_g_loss_is_lower_when_fakes_fool_d(name: str) -> None:
    loss = build_gan_loss(name)
    real = _logits(8, 1, seed=5)
    fooled = _g_loss(loss, torch.full((8, 1), 3.0), real)
    caught = _g_loss(loss, torch.full((8, 1), -3.0), real)
    assert fooled < caught


@pytest.mark.parametrize("name", ALL_GAN_LOSSES)
def test_multi_scale_logits_sum_over_scales(name: str) -> None:
    loss = build_gan_loss(name)
    reals = [_logits(2, 1, 8, 8, seed=6), _logits(2, 1, 4, 4, seed=7)]
    fakes = [_logits(2, 1, 8, 8, seed=8), _logits(2, 1, 4, 4, seed=9)]

    d_sum = loss.discriminator(reals[0], fakes[0]) + loss.discriminator(reals[1], fakes[1])
    torch.testing.assert_close(loss.discriminator(reals, fakes), d_sum)
    g_sum = _g_loss(loss, fakes[0], reals[0]) + _g_loss(loss, fakes[1], reals[1])
    torch.testing.assert_close(loss.generator(fakes, reals), g_sum)

    # pix2pixHD's D returns each scale's intermediate maps too; only the last one is scored.
    feature = torch.full((2, 8, 8, 8), 100.0)
    nested_reals = [[feature, reals[0]], [feature, reals[1]]]
    nested_fakes = [[feature, fakes[0]], [feature, fakes[1]]]
    torch.testing.assert_close(loss.discriminator(nested_reals, nested_fakes), d_sum)


def test_scale_count_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 scales"):
        build_gan_loss("lsgan").discriminator([torch.ones(1), torch.ones(1)], [torch.zeros(1)])


def test_only_the_relativistic_loss_needs_real_logits_for_g() -> None:
    assert [n for n in ALL_GAN_LOSSES if GAN_LOSSES.get(n).generator_needs_real] == [
        "relativistic_average"
    ]


# --- specific values --------------------------------------------------------------------------


def test_lsgan_is_zero_when_d_is_exact() -> None:
    loss = build_gan_loss("lsgan")
    assert loss.discriminator(torch.ones(3, 1, 4, 4), torch.zeros(3, 1, 4, 4)) == 0
    assert loss.generator(torch.ones(3, 1, 4, 4)) == 0
    # (0.5 - 1)^2 + 0.5^2
    assert loss.discriminator(torch.full((2,), 0.5), torch.full((2,), 0.5)).item() == 0.5


def test_hinge_d_is_zero_beyond_the_margin() -> None:
    loss = build_gan_loss("hinge")
    real = torch.tensor([1.0, 1.5, 4.0])
    fake = torch.tensor([-1.0, -2.0, -7.0])
    assert loss.discriminator(real, fake) == 0
    assert loss.discriminator(torch.zeros(3), torch.zeros(3)).item() == 2.0
    assert loss.generator(torch.tensor([1.0, 3.0])).item() == -2.0


def test_wgan_is_the_difference_of_means() -> None:
    loss = build_gan_loss("wgan")
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([-1.0, 0.0])
    assert loss.discriminator(real, fake).item() == -0.5 - 2.0
    assert loss.generator(fake).item() == 0.5


def test_bce_losses_at_zero_logits() -> None:
    log2 = math.log(2)
    zeros = torch.zeros(4)
    for name in ("minimax", "nonsaturating"):
        assert build_gan_loss(name).discriminator(zeros, zeros).item() == pytest.approx(2 * log2)
    assert build_gan_loss("minimax").generator(zeros).item() == pytest.approx(-log2)
    assert build_gan_loss("nonsaturating").generator(zeros).item() == pytest.approx(log2)


def test_nonsaturating_g_gradient_survives_where_minimax_saturates() -> None:
    # D confidently rejects the fakes, D(G(z)) = sigmoid(-8) ≈ 3e-4: the reason NS exists.
    grads = {}
    for name in ("minimax", "nonsaturating"):
        fake = torch.full((4,), -8.0, requires_grad=True)
        build_gan_loss(name).generator(fake).backward()
        assert fake.grad is not None
        grads[name] = fake.grad.abs().mean().item()
    assert grads["nonsaturating"] > 1000 * grads["minimax"]
    assert grads["minimax"] == pytest.approx(torch.sigmoid(torch.tensor(-8.0)).item() / 4)


def test_relativistic_average_matches_esrgan_formula() -> None:
    loss = build_gan_loss("relativistic_average")
    real, fake = _logits(6, seed=10), _logits(6, seed=11)
    d_real_vs_fake = torch.sigmoid(real - fake.mean())
    d_fake_vs_real = torch.sigmoid(fake - real.mean())
    expected_d = -torch.log(d_real_vs_fake).mean() - torch.log(1 - d_fake_vs_real).mean()
    expected_g = -torch.log(1 - d_real_vs_fake).mean() - torch.log(d_fake_vs_real).mean()
    torch.testing.assert_close(loss.discriminator(real, fake), expected_d)
    torch.testing.assert_close(loss.generator(fake, real), expected_g)


def test_relativistic_generator_needs_and_detaches_real_logits() -> None:
    loss = build_gan_loss("relativistic_average")
    with pytest.raises(ValueError, match="real_logits"):
        loss.generator(torch.zeros(2))
    real = torch.zeros(2, requires_grad=True)
    fake = torch.zeros(2, requires_grad=True)
    loss.generator(fake, real).backward()
    assert real.grad is None  # G's step must not push gradient into D's real branch
    assert fake.grad is not None


# --- penalties --------------------------------------------------------------------------------


def _linear_critic(weight: torch.Tensor) -> nn.Linear:
    critic = nn.Linear(weight.numel(), 1)
    with torch.no_grad():
        critic.weight.copy_(weight.view(1, -1))
    return critic


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic() -> None:
    w = _logits(12, seed=12)
    critic = _linear_critic(w / w.norm())
    real, fake = _logits(5, 12, seed=13), _logits(5, 12, seed=14)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)


def test_gradient_penalty_of_a_linear_critic_is_lambda_norm_minus_one_squared() -> None:
    w = _logits(12, seed=15)
    norm = w.norm().item()
    critic = _linear_critic(w)
    real, fake = _logits(5, 12, seed=16), _logits(5, 12, seed=17)
    penalty = gradient_penalty(critic, real, fake, lambda_gp=10.0)
    assert penalty.item() == pytest.approx(10.0 * (norm - 1) ** 2, rel=1e-5)
    penalty.backward()  # create_graph: the penalty trains the critic
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_gradient_penalty_on_images_and_a_multi_scale_critic() -> None:
    w = _logits(3 * 4 * 4, seed=18)
    norm = w.norm().item()

    def critic(x: torch.Tensor) -> list[torch.Tensor]:
        score = x.flatten(1) @ w
        return [score, 2 * score]

    real, fake = _logits(3, 3, 4, 4, seed=19), _logits(3, 3, 4, 4, seed=20)
    expected = 1.0 * ((norm - 1) ** 2 + (2 * norm - 1) ** 2)
    penalty = gradient_penalty(critic, real, fake, lambda_gp=1.0)
    assert penalty.item() == pytest.approx(expected, rel=1e-5)


def test_r1_of_a_linear_d_is_half_gamma_squared_weight_norm() -> None:
    w = _logits(2 * 3 * 3, seed=21)
    images = _logits(4, 2, 3, 3, seed=22).requires_grad_(True)
    logits = images.flatten(1) @ w
    penalty = r1_penalty(logits, images, gamma=10.0)
    assert penalty.item() == pytest.approx(10.0 / 2 * w.pow(2).sum().item(), rel=1e-5)


def test_r1_needs_images_that_require_grad() -> None:
    images = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(images.sum(1), images, gamma=1.0)


def test_clip_weights_clamps_in_place() -> None:
    module = nn.Linear(3, 2)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([[0.5, -0.5, 0.001], [-0.02, 0.005, 0.0]]))
        module.bias.copy_(torch.tensor([2.0, -0.003]))
    clip_weights(module, clip=0.01)
    torch.testing.assert_close(
        module.weight, torch.tensor([[0.01, -0.01, 0.001], [-0.01, 0.005, 0.0]])
    )
    torch.testing.assert_close(module.bias, torch.tensor([0.01, -0.003]))
    with pytest.raises(ValueError, match="positive"):
        clip_weights(module, clip=0.0)


def test_wgan_optimizer_is_rmsprop_at_the_papers_rate() -> None:
    optimizer = wgan_optimizer(nn.Linear(2, 1).parameters())
    assert type(optimizer) is torch.optim.RMSprop
    assert optimizer.param_groups[0]["lr"] == 5e-5


# --- pixel losses -----------------------------------------------------------------------------


def test_weighted_pixel_losses() -> None:
    prediction, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 2.0, 1.0])
    assert L1Loss(weight=2.0)(prediction, target).item() == pytest.approx(2.0 * 4 / 3)
    assert MSELoss(weight=3.0)(prediction, target).item() == pytest.approx(3.0 * 10 / 3)
    assert L1Loss(reduction="sum")(prediction, target).item() == 4.0


def test_total_variation_of_constant_and_checkerboard() -> None:
    assert total_variation(torch.full((2, 3, 5, 7), 0.3)).item() == 0.0
    rows, cols = torch.meshgrid(torch.arange(6), torch.arange(8), indexing="ij")
    checkerboard = ((rows + cols) % 2).float()[None, None]
    # Every vertical and every horizontal step is 1: 1 + 1.
    assert total_variation(checkerboard).item() == 2.0
    assert total_variation(0.25 * checkerboard).item() == 0.5


def _d_features(seed: int) -> list[list[torch.Tensor]]:
    """Two scales of a pix2pixHD-like D: three intermediate maps, then the patch scores."""
    return [
        [_logits(1, 4, s, s, seed=seed + 10 * scale + j) for j, s in enumerate((8, 4, 4, 4))]
        for scale in range(2)
    ]


def test_feature_matching_is_zero_for_identical_features() -> None:
    features = _d_features(seed=30)
    assert feature_matching(features, features).item() == 0.0


def test_feature_matching_values_and_real_maps_get_no_gradient() -> None:
    real = [[t.requires_grad_(True) for t in scale] for scale in _d_features(seed=40)]
    # Each intermediate map off by 1 everywhere; the scores (last) off by 100, and skipped.
    fake = [[t.detach() + 1 for t in scale[:-1]] + [scale[-1].detach() + 100] for scale in real]
    loss = feature_matching(fake, real, weight=10.0)
    assert loss.item() == pytest.approx(10.0)
    assert feature_matching(fake, real, skip_last=False).item() == pytest.approx(
        (6 * 1 + 2 * 100) / 8
    )
    for scale in fake:
        scale[0].requires_grad_(True)
    feature_matching(fake, real).backward()
    assert all(t.grad is None for scale in real for t in scale)


def test_feature_matching_pix2pixhd_weighting_matches_the_training_recipe() -> None:
    fake, real = _d_features(seed=50), _d_features(seed=60)
    ours = feature_matching(fake, real, weight=10.0, weighting="pix2pixhd")
    # Three intermediate maps per scale: a D with n_layers = 2 (n_layers + 1 before the scores).
    # pix2pixHD: each map's L1 weighs 4 / (n_layers + 1) and each scale 1 / num_D, times λ.
    terms = [
        F.l1_loss(f, r)
        for fake_scale, real_scale in zip(fake, real, strict=True)
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True)
    ]
    expected = torch.stack(terms).sum() * (4 / 3) * (1 / len(fake)) * 10.0
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(ours, 4 * feature_matching(fake, real, weight=10.0))


def test_cycle_and_identity_are_weighted_l1() -> None:
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert cycle_consistency(a, b).item() == pytest.approx(10.0 * 0.5)
    assert cycle_consistency(a, b, weight=2.0).item() == pytest.approx(1.0)
    assert identity(a, b).item() == pytest.approx(5.0 * 0.5)
    assert identity(b, b, weight=7.0).item() == 0.0


# --- VGG perceptual loss ----------------------------------------------------------------------

TORCHVISION_VGG19_KEYS = [
    f"features.{i}.{p}"
    for i in (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    for p in ("weight", "bias")
]


class _VGG19(nn.Module):
    """torchvision's ``vgg19()`` key layout: ``features.*`` (the classifier is faked below)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg19_features()


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    """A seeded, randomly initialised VGG19 state_dict in torchvision's layout.

    Random weights, not ImageNet ones (none ship here): the tests below check that such a file
    loads by its keys and that the loss behaves, not what the loss measures.
    """
    torch.manual_seed(0)
    state = dict(_VGG19().state_dict())
    state["classifier.0.weight"] = torch.zeros(4, 2)  # torchvision's files have a classifier
    return state


@pytest.fixture(scope="module")
def vgg_file(vgg_state: dict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg19-seeded.pth"
    torch.save(vgg_state, path)
    return path


def test_vgg19_features_have_torchvisions_keys() -> None:
    assert list(_VGG19().state_dict()) == TORCHVISION_VGG19_KEYS
    assert len(TORCHVISION_VGG19_KEYS) == 32
    assert VGG19_CONV_LAYERS["conv1_1"] == 0
    assert VGG19_CONV_LAYERS["conv3_4"] == 16
    assert VGG19_CONV_LAYERS["conv5_4"] == 34
    assert sorted(VGG19_CONV_LAYERS.values()) == [
        int(key.split(".")[1]) for key in TORCHVISION_VGG19_KEYS[::2]
    ]


@pytest.mark.parametrize("path", [None, "/nonexistent/vgg19-dcbb9e9d.pth"])
def test_missing_vgg_weights_raise(path: str | None) -> None:
    with pytest.raises(PerceptualWeightsMissing, match="weights"):
        VGGPerceptualLoss(path)


def test_perceptual_loss_or_none_without_a_path_says_why() -> None:
    loss, reason = perceptual_loss_or_none(None)
    assert loss is None
    assert reason == PERCEPTUAL_OFF_REASON
    assert "off" in reason and "weights" in reason
    with pytest.raises(PerceptualWeightsMissing):  # a configured path that is wrong is loud
        perceptual_loss_or_none(Path("/nonexistent/vgg19.pth"))


def test_vgg_loss_loads_the_file_and_is_frozen(
    vgg_file: Path, vgg_state: dict[str, torch.Tensor]
) -> None:
    loss = VGGPerceptualLoss(vgg_file)  # conv5_4, ESRGAN's default
    assert list(loss.state_dict()) == TORCHVISION_VGG19_KEYS
    for key, value in loss.state_dict().items():
        torch.testing.assert_close(value, vgg_state[key], rtol=0, atol=0)
    assert not any(p.requires_grad for p in loss.parameters())
    assert not loss.training


def test_vgg_loss_is_zero_for_identical_images_and_positive_otherwise(vgg_file: Path) -> None:
    loss = VGGPerceptualLoss(vgg_file, layer_weights={"conv5_4": 1.0, "conv2_2": 0.5})
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert loss(target, target).item() == 0.0
    prediction = (target + 0.2 * _logits(2, 3, 16, 16, seed=2)).requires_grad_(True)
    value = loss(prediction, target)
    assert value.item() > 0
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0


def test_vgg_value_range_maps_inputs_to_the_same_features(vgg_file: Path) -> None:
    zero_one = VGGPerceptualLoss(vgg_file, {"conv1_2": 1.0}, value_range=(0.0, 1.0))
    minus_one_one = VGGPerceptualLoss(vgg_file, {"conv1_2": 1.0}, value_range=(-1.0, 1.0))
    a = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    b = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(zero_one(a, b), minus_one_one(2 * a - 1, 2 * b - 1))


def test_vgg_loads_keys_without_the_features_prefix(
    vgg_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    path = tmp_path / "bare.pth"
    torch.save({k.removeprefix("features."): v for k, v in vgg_state.items()}, path)
    loss = VGGPerceptualLoss(path, {"conv1_2": 1.0})
    assert list(loss.state_dict()) == TORCHVISION_VGG19_KEYS[:4]
    torch.testing.assert_close(loss.features[2].weight, vgg_state["features.2.weight"])


def test_vgg_file_missing_a_needed_layer_or_misshaped_is_rejected(
    vgg_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.pth"
    torch.save({k: v for k, v in vgg_state.items() if k != "features.34.weight"}, truncated)
    VGGPerceptualLoss(truncated, {"conv5_3": 1.0})  # conv5_4 is not needed for conv5_3
    with pytest.raises(WeightImportError, match=r"features\.34\.weight"):
        VGGPerceptualLoss(truncated)

    misshaped = tmp_path / "misshaped.pth"
    torch.save({**vgg_state, "features.0.weight": torch.zeros(64, 1, 3, 3)}, misshaped)
    with pytest.raises(WeightImportError, match="not torchvision VGG19"):
        VGGPerceptualLoss(misshaped, {"conv1_1": 1.0})


def test_vgg_unknown_layer_lists_the_known_ones(vgg_file: Path) -> None:
    with pytest.raises(UnknownNameError, match="conv5_4"):
        VGGPerceptualLoss(vgg_file, {"relu5_4": 1.0})


def test_perceptual_loss_or_none_with_a_file(vgg_file: Path) -> None:
    loss, reason = perceptual_loss_or_none(vgg_file, layer_weights={"conv3_4": 1.0})
    assert isinstance(loss, VGGPerceptualLoss)
    assert reason == f"vgg perceptual loss on: conv3_4=1 from {vgg_file}"
