"""GeneGAN: Prinsphield/GeneGAN's layout, the split and the swap, the with/without data, the
recipe's losses and schedule, exact resume, the evaluation, ONNX parity of the served module."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from gantry.core.errors import InvalidInput
from gantry.core.training import CONFIG_TYPES, GeneGANConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN, seed_evaluation_cache
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.genegan import (
    GeneGAN,
    GeneGANCrossover,
    GeneGANDiscriminator,
    GeneGANJoiner,
    GeneGANSplitter,
)
from trainer.data import build_dataset, collate
from trainer.data.attributes import AttributePairs, CelebAAttributes
from trainer.evaluation import AttributeSwapEvaluator, cached_domain_classifier
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR
from trainer.recipes.genegan import (
    GeneGANRecipe,
    kernel_decay,
    parallelogram_loss,
    unit_l1,
)
from trainer.weights.dlib import load_dlib_resnet

ATTRIBUTE = "Blond_Hair"
# Critic bursts of 2 every 3 iterations: a few steps hold critic-only steps and G steps.
SMALL = {**SMALL_RUN, "critic_burst": 2, "burst_every": 3}


def _config(**overrides: Any) -> GeneGANConfig:
    config = load_train_config("genegan-celeba", {**SMALL, **overrides})
    assert isinstance(config, GeneGANConfig)
    return config


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    norm = f"{prefix}.batch_normalization"
    keys = {f"{norm}.{p}": (channels,) for p in ("weight", "bias", "running_mean", "running_var")}
    return keys | {f"{norm}.num_batches_tracked": ()}


# --- Prinsphield's layout -------------------------------------------------------------------
# Written out by hand from Prinsphield/GeneGAN model.py (splitter, joiner, discriminator) at
# dataset.py's nhwc [64, 64, 64, 3] and second_ratio 0.25, in PyTorch's NCHW axes.


def test_the_celeba_generator_has_upstreams_scopes_and_shapes() -> None:
    with torch.device("meta"):
        g = build_network("genegan_celeba")
    expected = {
        "splitter.conv1.weight": (128, 3, 4, 4),  # make_conv: no batch norm, no bias
        "splitter.conv2.weight": (256, 128, 4, 4),
        **_bn("splitter.conv2", 256),
        "splitter.conv3.weight": (512, 256, 4, 4),
        **_bn("splitter.conv3", 512),
        "joiner.deconv1.weight": (512, 512, 4, 4),  # ConvTranspose2d: (in, out, k, k)
        **_bn("joiner.deconv1", 512),
        "joiner.deconv2.weight": (512, 256, 4, 4),
        **_bn("joiner.deconv2", 256),
        "joiner.deconv3.weight": (256, 3, 4, 4),  # make_deconv: no batch norm
        "joiner.b": (1, 3, 1, 1),  # G_joiner/b, [1, 1, 1, 3] in NHWC
    }
    assert _shapes(g) == expected
    assert sum(p.numel() for p in g.parameters()) == 8_934_403
    assert isinstance(g, GeneGAN) and g.splitter.attribute_channels == 128  # 512 * 0.25


def test_the_celeba_discriminator_has_upstreams_scopes_and_shapes() -> None:
    with torch.device("meta"):
        d = build_network("genegan_celeba_discriminator")
    expected = {
        "conv1.weight": (128, 3, 4, 4),
        "conv2.weight": (256, 128, 4, 4),
        **_bn("conv2", 256),
        "conv3.weight": (512, 256, 4, 4),
        **_bn("conv3", 512),
        "conv4.weight": (512, 512, 4, 4),
        **_bn("conv4", 512),
        "fct.weight": (1, 512 * 4 * 4),  # the whole 4x4 map of a 64 px face
        "fct.bias": (1,),
    }
    assert _shapes(d) == expected
    assert sum(p.numel() for p in d.parameters()) == 6_832_641
    norms = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    # TensorFlow's batch_normalization defaults: momentum 0.99, epsilon 1e-3.
    assert len(norms) == 3 and all((m.momentum, m.eps) == (0.01, 1e-3) for m in norms)


def test_the_splitter_cuts_the_last_channels_off_as_the_attribute_part() -> None:
    torch.manual_seed(0)
    splitter = GeneGANSplitter(width=8, second_ratio=0.25).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    seen: list[torch.Tensor] = []
    splitter.conv1.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    background, attribute = splitter(x)
    assert background.shape == (2, 24, 8, 8) and attribute.shape == (2, 8, 8, 8)
    # The full map is conv3's output after LeakyReLU; the two parts are its channels in order.
    h = nn.functional.leaky_relu(splitter.conv1(seen[0]), 0.2)
    h = nn.functional.leaky_relu(splitter.conv2(h), 0.2)
    full = nn.functional.leaky_relu(splitter.conv3(h), 0.2)
    assert torch.equal(torch.cat([background, attribute], 1), full)
    assert torch.allclose(seen[0], (x + 1) / 2)  # upstream's image / 255 on [0, 255] images
    assert GeneGANSplitter(width=8, second_ratio=0.5).attribute_channels == 16
    with pytest.raises(ValueError, match="leaves a part"):
        GeneGANSplitter(width=8, second_ratio=0.01)
    with pytest.raises(ValueError, match="multiples of 8"):
        splitter(torch.zeros(1, 3, 60, 60))


def test_the_tiny_variants_swap_at_64_px() -> None:
    torch.manual_seed(0)
    g = build_network("genegan_tiny").eval()
    d = build_network("genegan_tiny_discriminator", image_size=64)
    assert isinstance(g, GeneGAN) and isinstance(d, GeneGANDiscriminator)
    assert isinstance(g.joiner, GeneGANJoiner) and g.splitter.attribute_channels == 32
    image, donor = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = g(image, donor)
    assert out.shape == (2, 3, 64, 64) and float(out.abs().max()) <= 1
    assert d(image).shape == (2, 1)
    # image's background and donor's attribute part, nothing else.
    a, _ = g.splitter(image)
    _, x = g.splitter(donor)
    assert torch.equal(g(image, donor), g.joiner(a, x))
    other = torch.rand(2, 3, 64, 64) * 2 - 1
    mixed = g(image, torch.cat([donor[:1], other[1:]]))
    assert torch.equal(mixed[0], g(image, donor)[0]) and not torch.equal(mixed[1], out[1])
    with pytest.raises(ValueError, match="built for 64x64"):
        d(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        GeneGANDiscriminator(width=8, image_size=72)


def test_the_crossover_enforces_b0s_zero_and_shares_the_served_state_dict() -> None:
    torch.manual_seed(0)
    g = build_network("genegan_tiny")
    assert isinstance(g, GeneGAN)
    crossover = GeneGANCrossover.of(g)
    assert crossover.state_dict().keys() == g.state_dict().keys()
    assert crossover.splitter is g.splitter and crossover.generator().joiner is g.joiner
    crossover.train()
    for _ in range(3):  # running statistics that are not the initial ones
        crossover(torch.rand(4, 3, 64, 64) * 2 - 1, torch.rand(4, 3, 64, 64) * 2 - 1)
    crossover.eval()
    au, b0 = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    out = crossover(au, b0)
    assert torch.equal(out.bu, g(b0, au)) and torch.equal(out.au_rec, g(au, au))
    _, epsilon = g.splitter(b0)
    assert torch.equal(out.epsilon, epsilon) and float(epsilon.detach().abs().sum()) > 0
    # B0's attribute part never reaches a decoded face: A0 and B0' decode zeros.
    other = crossover(au, torch.rand(2, 3, 64, 64) * 2 - 1)
    assert torch.equal(other.a0, out.a0) and not torch.equal(other.bu, out.bu)
    b, _ = g.splitter(b0)
    assert torch.equal(out.b0_rec, g.joiner(b, torch.zeros_like(epsilon)))


# --- data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pairs() -> tuple[AttributePairs, AttributePairs]:
    faces = [build_dataset("celeba_attributes", DATA, s, 64) for s in ("train", "val")]
    assert all(isinstance(f, CelebAAttributes) for f in faces)
    return AttributePairs(faces[0], ATTRIBUTE), AttributePairs(faces[1], ATTRIBUTE)  # type: ignore[arg-type]


def test_the_pairs_draw_a_face_with_and_one_without_the_attribute(
    pairs: tuple[AttributePairs, AttributePairs],
) -> None:
    train_pairs, val_pairs = pairs
    # 730 blond faces in the subset; celeba_attributes holds 100 of them aside.
    assert (len(train_pairs.with_index), len(train_pairs.without_index)) == (630, 4070)
    assert (len(val_pairs.with_index), len(val_pairs.without_index)) == (100, 200)
    assert len(train_pairs) == 4070
    faces = train_pairs.faces
    (column,) = faces.columns([ATTRIBUTE])
    assert faces.labels[train_pairs.with_index, column].all()
    assert not faces.labels[train_pairs.without_index, column].any()
    sample = train_pairs.sample(700)
    assert set(sample) == {"au", "b0"} and sample["au"].shape == (3, 64, 64)
    # Index 700 is the 71st face with the attribute (700 mod 630).
    with_face = faces.faces_uint8[train_pairs.with_index[70]]
    assert torch.equal(sample["au"], torch.from_numpy(with_face).permute(2, 0, 1) / 127.5 - 1)
    assert torch.equal(train_pairs.sample(5, flip=True)["b0"], train_pairs.sample(5)["b0"].flip(2))
    b0_faces = {train_pairs.sample(i)["b0"].sum().item() for i in range(50)}
    assert len(b0_faces) == 50  # the permutation spreads the faces without
    assert tuple(val_pairs.faces_with().shape) == (100, 3, 64, 64)
    assert val_pairs.faces_without().dtype == torch.uint8
    with pytest.raises(KeyError, match="'Purple_Hair'; known:"):
        AttributePairs(faces, "Purple_Hair")


# --- losses and schedule ---------------------------------------------------------------------


def test_the_pixel_losses_are_in_upstreams_0_to_1_units() -> None:
    au, b0, a0 = (
        torch.full((1, 3, 2, 2), 0.5),
        torch.full((1, 3, 2, 2), -0.5),
        torch.zeros(1, 3, 2, 2),
    )
    assert float(unit_l1(au, b0)) == pytest.approx(0.5)  # 1.0 in [-1, 1] is 0.5 in [0, 1]
    assert float(parallelogram_loss(au, b0, a0, torch.zeros(1, 3, 2, 2))) == 0
    assert float(parallelogram_loss(au, b0, a0, au)) == pytest.approx(0.25)
    splitter = GeneGANSplitter(width=4)
    expected = sum(
        0.5 * 5e-5 * float(w.detach().pow(2).mean())
        for w in (splitter.conv1.weight, splitter.conv2.weight, splitter.conv3.weight)
    )
    assert kernel_decay(splitter, 5e-5).item() == pytest.approx(expected, rel=1e-6)


def _recipe(config: GeneGANConfig) -> GeneGANRecipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("genegan")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, GeneGANRecipe)
    recipe.build()
    return recipe


def test_g_steps_on_the_last_critic_update_of_each_iteration() -> None:
    upstream = _recipe(_config(critic_burst=100, burst_every=500))
    g_steps = [s for s in range(1400) if upstream.is_generator_step(s)]
    # Iteration 0: 100 critic updates (steps 0-99), G after the last; then one each.
    assert g_steps[:3] == [99, 100, 101] and 98 not in g_steps
    assert len([s for s in g_steps if s < 599]) == 500  # 500 iterations a cycle
    assert 599 not in g_steps and g_steps[500] == 698  # the next burst
    small = _recipe(_config())
    assert [small.is_generator_step(s) for s in range(8)] == [
        False, True, True, True, False, True, True, True,
    ]  # fmt: skip


def _optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def test_the_steps_clip_the_critics_and_move_every_weight() -> None:
    recipe = _recipe(_config())
    assert recipe.generator_key == "G" and set(recipe.networks) == {"G", "D_Au", "D_B0"}
    assert isinstance(recipe.optimizers["G"], torch.optim.RMSprop)
    assert recipe.optimizers["D"].param_groups[0]["alpha"] == 0.8
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    keys, g_counts = [], []
    for step in range(4):
        batch = collate([dataset.sample(i) for i in (2 * step, 2 * step + 1)])
        losses = recipe.train_step(batch, step)
        keys.append(set(losses))
        g_counts.append(_optimizer_steps(recipe.optimizers["G"]))
        assert all(np.isfinite(v) for v in losses.values())
        for name in ("D_Au", "D_B0"):
            assert (
                max(float(p.detach().abs().max()) for p in recipe.networks[name].parameters())
                <= 0.01
            )
    critic = {"d_au", "d_b0"}
    g_terms = {"g_nulling", "g_rec_au", "g_rec_b0", "g_adv_bu", "g_adv_a0"}
    with_g = critic | g_terms | {"g_parallelogram", "g_decay"}
    assert keys == [critic, with_g, with_g, with_g]
    assert g_counts == [0, 1, 2, 3] and _optimizer_steps(recipe.optimizers["D"]) == 4
    assert 0 < losses["g_rec_au"] < 1 and losses["g_nulling"] > 0 and losses["g_decay"] > 0
    for name, network in recipe.networks.items():
        assert all(p.requires_grad for p in network.parameters())
        same = [n for n, p in network.named_parameters() if torch.equal(p, before[name][n])]
        # The WGAN critic loss E[D(fake)] - E[D(real)] gives fct's bias the gradient 1 - 1.
        assert same == ([] if name == "G" else ["fct.bias"]), name


def test_the_nulling_loss_reaches_the_splitter() -> None:
    """The same G step with and without λ_nulling: only ε's loss can make them differ."""
    updates = []
    for weight in (1.0, 0.0):
        recipe = _recipe(_config(lambda_nulling=weight, critic_burst=1))
        batch = collate([recipe.train_dataset().sample(i) for i in (0, 1)])
        recipe.train_step(batch, 0)
        updates.append(recipe.networks["G"].state_dict()["splitter.conv3.weight"].clone())
    assert not torch.equal(updates[0], updates[1])


def test_the_shipped_config_has_upstreams_settings_but_the_adversarial_weight() -> None:
    config = load_train_config("genegan-celeba")
    assert isinstance(config, GeneGANConfig) and CONFIG_TYPES.get("genegan") is GeneGANConfig
    assert config.attribute == ATTRIBUTE and config.second_ratio == 0.25
    assert (config.optim.lr, config.rmsprop_decay, config.clip) == (5e-5, 0.8, 0.01)
    assert (config.lambda_rec, config.lambda_nulling) == (1, 1)
    assert config.lambda_adv == 100  # upstream's 1 does not move G in the CPU budget
    assert (config.gan_loss, config.optimizer) == ("wgan", "rmsprop")
    assert config.lambda_parallelogram == pytest.approx(0.01 * 255)
    assert (config.weight_decay, config.critic_burst, config.burst_every) == (5e-5, 100, 500)
    assert (config.data.size, config.data.dataset) == (64, "celeba_attributes")
    assert (config.generator, config.discriminator) == (
        "genegan_tiny",
        "genegan_tiny_discriminator",
    )
    assert config.publish == "genegan-celeba" and config.build_steps is not None
    with pytest.raises(InvalidInput, match="second_ratio"):
        load_train_config("genegan-celeba", {"second_ratio": 1.0})
    with pytest.raises(InvalidInput, match="critic_burst"):
        load_train_config("genegan-celeba", {"critic_burst": 0})


def test_an_unknown_attribute_or_a_dataset_without_labels_is_refused() -> None:
    with pytest.raises(KeyError, match="'Purple_Hair'; known:"):
        _recipe(_config(attribute="Purple_Hair"))
    recipe = RECIPES.get("genegan")(
        _config(**{"data.dataset": "celeba_hair"}), data_dir=DATA, device=torch.device("cpu")
    )
    with pytest.raises(TypeError, match="attribute labels"):
        recipe.build()


# --- runs, resume, evaluation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_cache(
    pairs: tuple[AttributePairs, AttributePairs], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The with/without classifier the runs evaluate with, trained once for the module."""
    train_pairs, _ = pairs
    cache = tmp_path_factory.mktemp("classifier")
    cached_domain_classifier(train_pairs.faces_without(), train_pairs.faces_with(), cache)
    return cache


FIGURES = {
    "classifier_real_acc",
    "identity_cos_other_people",
    "val_attr_added_acc",
    "val_attr_removed_acc",
    "val_identity_cos",
    "val_identity_cos_added",
    "val_identity_cos_removed",
    "val_rec_l1",
}


def test_a_resumed_run_repeats_the_uninterrupted_one(
    tmp_path: Path, classifier_cache: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for run_dir in (straight, resumed):
        seed_evaluation_cache(classifier_cache, run_dir)
    result = train(_config(steps=8), straight, data_dir=DATA, device="cpu")
    train(_config(steps=4), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=8), resumed, data_dir=DATA, device="cpu")

    assert (again.resumed_from, again.step) == (4, 8)
    a = checkpointing.load(straight / "checkpoints" / "step-000008.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000008.pt")
    for name in ("G", "D_Au", "D_B0"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    assert int(a["optimizers"]["D"]["state"][0]["step"]) == 8
    assert int(a["optimizers"]["G"]["state"][0]["step"]) == 6  # steps 0 and 4 are bursts'

    # generator.pth is the served module's state_dict: it loads strict.
    served = build_network(result.generator_architecture)
    served.load_state_dict(torch.load(straight / GENERATOR_FILE, weights_only=True), strict=True)
    assert isinstance(served, GeneGAN)
    assert torch.equal(served.joiner.b, a["networks"]["G"]["joiner.b"])

    assert set(result.metrics) == FIGURES
    assert result.metrics == again.metrics
    assert result.metrics_at_init == again.metrics_at_init
    assert len(list((straight / EVALUATION_DIR).glob("domain-classifier-*.pt"))) == 1
    assert result.metrics["classifier_real_acc"] > 0.8
    for key in ("val_attr_added_acc", "val_attr_removed_acc"):
        assert 0 <= result.metrics[key] <= 1
    assert 0 < result.metrics["val_identity_cos"] <= 1 and result.metrics["val_rec_l1"] > 0
    assert (straight / "samples" / "step-000008.png").is_file()


class _Copy(nn.Module):
    """A swapper that changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
        return image


class _Donor(nn.Module):
    """A swapper that returns the donor: the attribute moves, the person does not stay."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, donor: torch.Tensor) -> torch.Tensor:
        return donor


def test_copying_and_donor_swappers_score_the_two_ends(
    pairs: tuple[AttributePairs, AttributePairs], classifier_cache: Path
) -> None:
    train_pairs, val_pairs = pairs
    evaluator = AttributeSwapEvaluator(
        train_pairs.faces_with(),
        train_pairs.faces_without(),
        val_pairs.faces_with().float() / 127.5 - 1,
        val_pairs.faces_without().float() / 127.5 - 1,
        count=12,
        load_embedder=load_dlib_resnet,
        cache_dir=classifier_cache,
    )
    copy, donor = evaluator(_Copy()), evaluator(_Donor())
    assert set(copy) == FIGURES
    assert copy["val_identity_cos"] == pytest.approx(1, abs=1e-5)
    assert copy["val_rec_l1"] == 0 and donor["val_rec_l1"] == 0  # swap(x, x) is x for both
    # A copy keeps each face's own hair: it adds and removes only where the classifier errs.
    assert copy["val_attr_added_acc"] < 0.3 and copy["val_attr_removed_acc"] < 0.3
    assert donor["val_attr_added_acc"] > 0.7 and donor["val_attr_removed_acc"] > 0.7
    assert donor["val_identity_cos"] < 0.95
    assert 0.8 < copy["classifier_real_acc"] <= 1
    assert copy["classifier_real_acc"] == donor["classifier_real_acc"]
    assert 0.6 < copy["identity_cos_other_people"] < 0.95
    with pytest.raises(ValueError, match="smaller held-aside set"):
        AttributeSwapEvaluator(
            train_pairs.faces_with(),
            train_pairs.faces_without(),
            val_pairs.faces_with().float(),
            val_pairs.faces_without().float(),
            count=101,
            load_embedder=load_dlib_resnet,
        )


# --- the served module ------------------------------------------------------------------------


def test_the_served_module_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    g = build_network("genegan_tiny")
    assert isinstance(g, GeneGAN)
    crossover = GeneGANCrossover.of(g).train()
    for _ in range(3):  # running statistics of its own, as a trained module has
        crossover(torch.rand(8, 3, 64, 64) * 2 - 1, torch.rand(8, 3, 64, 64) * 2 - 1)
    with torch.no_grad():  # and weights that give more than a near-zero output
        for module in g.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.5)
                module.bias.normal_(0.0, 0.5)
        g.joiner.deconv3.weight.normal_(0.0, 0.1)
        g.joiner.b.normal_(0.0, 0.5)
    g.eval()
    path = tmp_path / "genegan.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            g,
            (torch.rand(1, 3, 64, 64) * 2 - 1, torch.rand(1, 3, 64, 64) * 2 - 1),
            str(path),
            input_names=["image", "donor"],
            output_names=["output"],
            dynamic_axes={n: {0: "batch"} for n in ("image", "donor", "output")},
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    donor = rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    (onnx_out,) = session.run(None, {"image": image, "donor": donor})
    with torch.no_grad():
        torch_out = g(torch.from_numpy(image), torch.from_numpy(donor)).numpy()
    assert onnx_out.shape == (3, 3, 64, 64)
    assert float(np.abs(onnx_out - torch_out).max()) < 1e-3
    assert float(np.abs(torch_out).std()) > 0.1  # not a trivially constant output
