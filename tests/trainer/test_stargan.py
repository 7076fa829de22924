"""StarGAN: yunjey's key layout and checkpoints, the CelebA attribute data, labels and the mask
vector, the recipe's steps (D every step, G every n_critic), resume, and the evaluation."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gantry.core.errors import InvalidInput
from gantry.core.training import CONFIG_TYPES, StarGANConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN, seed_evaluation_cache, train_under_torchrun
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.stargan import (
    InstanceNorm2dTracked,
    StarGANDiscriminator,
    StarGANEditor,
    StarGANGenerator,
)
from trainer.data import build_dataset, collate
from trainer.data.attributes import CelebAAttributes
from trainer.data.unpaired import UnpairedFaces
from trainer.evaluation import AttributeTranslationEvaluator, cached_attribute_classifier
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR
from trainer.recipes.stargan import (
    LabelLayout,
    StarGANRecipe,
    classification_loss,
    create_labels,
    hair_colour_indices,
)
from trainer.weights.checkpoint import load_checkpoint
from trainer.weights.dlib import load_dlib_resnet
from trainer.weights.errors import WeightImportError

ATTRIBUTES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
# Two D updates per G update, so a few steps hold G steps and D-only steps.
SMALL = {**SMALL_RUN, "n_critic": 2}


def _config(**overrides: Any) -> StarGANConfig:
    config = load_train_config("stargan-celeba", {**SMALL, **overrides})
    assert isinstance(config, StarGANConfig)
    return config


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _norm(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.{p}": (channels,) for p in ("weight", "bias", "running_mean", "running_var")}
    return keys | {f"{prefix}.num_batches_tracked": ()}


# --- yunjey's layout ------------------------------------------------------------------------
# Written out by hand from yunjey/stargan model.py (Generator, ResidualBlock, Discriminator).


def test_the_celeba_generator_has_yunjeys_keys_and_shapes() -> None:
    with torch.device("meta"):
        g = build_network("stargan_celeba")
    shapes = _shapes(g)
    expected = {
        "main.0.weight": (64, 8, 7, 7),  # 3 + c_dim 5 input channels, no bias
        **_norm("main.1", 64),
        "main.3.weight": (128, 64, 4, 4),
        **_norm("main.4", 128),
        "main.6.weight": (256, 128, 4, 4),
        **_norm("main.7", 256),
        "main.9.main.0.weight": (256, 256, 3, 3),
        **_norm("main.9.main.1", 256),
        "main.9.main.3.weight": (256, 256, 3, 3),
        **_norm("main.9.main.4", 256),
        "main.14.main.3.weight": (256, 256, 3, 3),  # the sixth block
        "main.15.weight": (256, 128, 4, 4),  # ConvTranspose2d: (in, out, k, k)
        **_norm("main.16", 128),
        "main.18.weight": (128, 64, 4, 4),
        **_norm("main.19", 64),
        "main.21.weight": (3, 64, 7, 7),
    }
    assert {k: shapes.get(k) for k in expected} == expected
    convs = [k.removesuffix(".weight") for k, v in shapes.items() if len(v) == 4]
    assert len(convs) == 18 and not [c for c in convs if f"{c}.bias" in shapes]  # no conv bias
    assert "main.0.bias" not in shapes and "main.21.bias" not in shapes
    assert "main.15.main.0.weight" not in shapes  # six blocks, main.9 .. main.14
    assert len(shapes) == 103  # 18 convs, 17 norms of 5 entries
    # yunjey's print_network: "The number of parameters" of G.
    assert sum(p.numel() for p in g.parameters()) == 8_430_528
    assert isinstance(g, StarGANGenerator)
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 17 and all(m.affine and m.track_running_stats for m in norms)


def test_the_celeba_discriminator_has_yunjeys_keys_and_shapes() -> None:
    with torch.device("meta"):
        d = build_network("stargan_celeba_discriminator")
    expected = {
        "main.0.weight": (64, 3, 4, 4),
        "main.0.bias": (64,),
        "main.2.weight": (128, 64, 4, 4),
        "main.2.bias": (128,),
        "main.4.weight": (256, 128, 4, 4),
        "main.4.bias": (256,),
        "main.6.weight": (512, 256, 4, 4),
        "main.6.bias": (512,),
        "main.8.weight": (1024, 512, 4, 4),
        "main.8.bias": (1024,),
        "main.10.weight": (2048, 1024, 4, 4),
        "main.10.bias": (2048,),
        "conv1.weight": (1, 2048, 3, 3),
        "conv2.weight": (5, 2048, 2, 2),  # kernel 128 / 2**6
    }
    assert _shapes(d) == expected
    # The count yunjey's print_network reports for D (yunjey/stargan issue #110's log).
    assert sum(p.numel() for p in d.parameters()) == 44_762_048


def test_the_tiny_variants_run_at_64_px_and_take_c_dim() -> None:
    torch.manual_seed(0)
    g = build_network("stargan_tiny", c_dim=7)
    d = build_network("stargan_tiny_discriminator", c_dim=4, image_size=64)
    assert isinstance(g, StarGANGenerator) and isinstance(d, StarGANDiscriminator)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = g(x, torch.rand(2, 7))
    assert y.shape == (2, 3, 64, 64) and float(y.abs().max()) <= 1
    src, cls = d(x)
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 4)  # no sigmoid: any real value
    assert _shapes(d)["conv2.weight"] == (4, 256, 2, 2)
    with pytest.raises(ValueError, match=r"labels must be \(2, 7\)"):
        g(x, torch.rand(2, 5))
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.zeros(1, 3, 62, 62), torch.zeros(1, 7))
    with pytest.raises(ValueError, match="built for 64x64"):
        d(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="multiple of 2"):
        StarGANDiscriminator(image_size=48, repeat_num=5)


def test_instance_norm_uses_each_images_statistics_in_eval_mode_too() -> None:
    """yunjey translates in train mode; our eval mode must compute the same function."""
    torch.manual_seed(0)
    norm = InstanceNorm2dTracked(4)
    nn.init.normal_(norm.weight)
    x = torch.randn(3, 4, 8, 8) * 5 + 2
    trained = norm(x)
    mean, var = norm.running_mean, norm.running_var
    assert mean is not None and var is not None
    assert not torch.equal(mean, torch.zeros(4))  # updated in training
    stats = mean.clone(), var.clone()
    norm.eval()
    assert torch.allclose(norm(x), trained, atol=1e-6)
    assert torch.equal(mean, stats[0]) and torch.equal(var, stats[1])  # not in eval
    plain = nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    plain.load_state_dict(norm.state_dict())
    assert not torch.allclose(plain.eval()(x), trained, atol=1e-3)  # what we avoid


@pytest.mark.parametrize("counters", [False, True], ids=["pytorch-0.3-file", "pytorch-2-file"])
def test_an_official_generator_checkpoint_loads_strict(tmp_path: Path, counters: bool) -> None:
    """``200000-G.ckpt`` is a bare state_dict; yunjey trained the released one under PyTorch
    0.3, before norms had ``num_batches_tracked``, and later runs save one per norm."""
    torch.manual_seed(1)
    official = build_network("stargan_celeba").state_dict()
    file_state = OrderedDict(
        (k, v) for k, v in official.items() if counters or not k.endswith("num_batches_tracked")
    )
    path = tmp_path / "200000-G.ckpt"
    torch.save(file_state, path)
    loaded = load_checkpoint(path, "stargan_celeba")
    assert loaded.keys() == official.keys()
    assert all(torch.equal(loaded[k], official[k]) for k in official)
    model = build_network("stargan_celeba")
    model.load_state_dict(loaded, strict=True)

    wrong = tmp_path / "rafd-G.ckpt"  # c_dim 8: the stem's input channels differ
    torch.save(build_network("stargan_celeba", c_dim=8).state_dict(), wrong)
    with pytest.raises(WeightImportError, match=r"main\.0\.weight \(64, 11, 7, 7\) vs"):
        load_checkpoint(wrong, "stargan_celeba")


def test_a_discriminator_checkpoint_loads_strict(tmp_path: Path) -> None:
    state = build_network("stargan_tiny_discriminator").state_dict()
    torch.save(state, tmp_path / "200000-D.ckpt")
    loaded = load_checkpoint(tmp_path / "200000-D.ckpt", "stargan_tiny_discriminator")
    assert set(loaded) == set(state) and "conv2.weight" in loaded


# --- data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces() -> tuple[CelebAAttributes, CelebAAttributes]:
    train_set = build_dataset("celeba_attributes", DATA, "train", 64)
    val = build_dataset("celeba_attributes", DATA, "val", 64)
    assert isinstance(train_set, CelebAAttributes) and isinstance(val, CelebAAttributes)
    return train_set, val


def test_the_held_aside_faces_are_fixed_disjoint_and_include_celeba_hairs(
    faces: tuple[CelebAAttributes, CelebAAttributes],
) -> None:
    train_set, val = faces
    assert (len(train_set), len(val)) == (4700, 300)
    assert not set(train_set.files) & set(val.files)
    hair_val = build_dataset("celeba_hair", DATA, "val", 16)
    hair_train = build_dataset("celeba_hair", DATA, "train", 16)
    assert isinstance(hair_val, UnpairedFaces) and isinstance(hair_train, UnpairedFaces)
    assert set(hair_val.files_a + hair_val.files_b) <= set(val.files)
    assert not set(hair_train.files_a + hair_train.files_b) & set(val.files)
    labels = val.selected(ATTRIBUTES[:3])
    # 100 of each hair colour group (black-not-blond, blond-not-black, brown-only).
    assert [int(n) for n in labels.sum(0)] == [100, 100, 103]  # 3 black faces are also brown
    # Interleaved black, blond, brown, so the first faces an evaluation takes are mixed.
    assert val.files[:3] == ["004552.jpg", "004239.jpg", "004535.jpg"]
    assert [int(n) for n in labels[:99].sum(0)] == [33, 33, 34]  # one black face is brown too
    assert train_set.files == sorted(train_set.files)

    sample = train_set.sample(3)
    assert sample["image"].shape == (3, 64, 64) and sample["attributes"].shape == (40,)
    # 000004.jpg (train index 3) in list_attr_celeba.txt: not Male, Young.
    row = dict(zip(train_set.names, sample["attributes"].tolist(), strict=True))
    assert (train_set.files[3], row["Male"], row["Young"]) == ("000004.jpg", 0.0, 1.0)
    assert train_set.columns(["Young", "Black_Hair"]) == [39, 8]
    with pytest.raises(KeyError, match="known: 5_o_Clock_Shadow"):
        train_set.columns(["Purple_Hair"])


# --- labels and the mask vector --------------------------------------------------------------


def test_target_labels_set_one_hair_colour_and_toggle_the_rest() -> None:
    hair = hair_colour_indices(ATTRIBUTES, ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"))
    assert hair == [0, 1, 2]
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    targets = create_labels(labels, hair)
    assert [t.tolist() for t in targets] == [
        [[1, 0, 0, 1, 0], [1, 0, 0, 0, 1]],  # black: set, others cleared
        [[0, 1, 0, 1, 0], [0, 1, 0, 0, 1]],  # blond
        [[0, 0, 1, 1, 0], [0, 0, 1, 0, 1]],  # brown
        [[1, 0, 0, 0, 0], [0, 0, 0, 1, 1]],  # male toggled
        [[1, 0, 0, 1, 1], [0, 0, 0, 0, 0]],  # young toggled
    ]
    assert torch.equal(labels, torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]))  # not moved
    # Hair colours anywhere in the selection form the group; non-hair attributes never do.
    order = ["Male", "Gray_Hair", "Young", "Blond_Hair"]
    assert hair_colour_indices(order, ("Blond_Hair", "Gray_Hair")) == [1, 3]
    (t_male, t_gray, _, _) = create_labels(torch.tensor([[0.0, 0, 1, 1]]), [1, 3])
    assert t_male.tolist() == [[1, 0, 1, 1]] and t_gray.tolist() == [[0, 1, 1, 0]]


def test_the_mask_vector_layout_and_its_masked_classification_loss() -> None:
    layout = LabelLayout(c_dim=5, c2_dim=8, mask_vector=True)
    assert (layout.generator_dim, layout.classifier_dim) == (15, 13)
    celeba = torch.tensor([[1.0, 0, 0, 1, 1]])
    assert layout.generator_labels(celeba).tolist() == [[1, 0, 0, 1, 1, *[0] * 8, 1, 0]]
    rafd = torch.tensor([3, 7])
    assert layout.generator_labels(rafd, source=1).tolist() == [
        [*[0] * 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
        [*[0] * 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],
    ]
    plain = LabelLayout(c_dim=5)
    assert (plain.generator_dim, plain.classifier_dim) == (5, 5)
    assert plain.generator_labels(celeba) is celeba
    with pytest.raises(ValueError, match="mask vector"):
        plain.generator_labels(rafd, source=1)

    logits = torch.randn(2, 13, requires_grad=True)
    labels = torch.tensor([[1.0, 0, 0, 1, 1], [0, 1, 0, 0, 1]])
    loss = classification_loss(logits, labels, layout)
    # yunjey: BCE with logits summed over attributes and images, divided by the batch.
    p = torch.sigmoid(logits[:, :5].detach())
    by_hand = -(labels * p.log() + (1 - labels) * (1 - p).log()).sum() / 2
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5)
    (grad,) = torch.autograd.grad(loss, logits)
    assert bool((grad[:, :5] != 0).all()) and bool((grad[:, 5:] == 0).all())
    loss2 = classification_loss(logits, rafd, layout, source=1)
    assert float(loss2) == pytest.approx(
        float(nn.functional.cross_entropy(logits[:, 5:].detach(), rafd)), rel=1e-6
    )
    (grad2,) = torch.autograd.grad(loss2, logits)
    assert bool((grad2[:, :5] == 0).all()) and bool((grad2[:, 5:] != 0).any())
    # Without the mask vector the classifier's outputs are all CelebA's.
    assert float(classification_loss(logits[:, :5], labels, plain)) == pytest.approx(float(loss))


# --- the recipe -----------------------------------------------------------------------------


def _recipe(config: StarGANConfig) -> StarGANRecipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("stargan")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, StarGANRecipe)
    recipe.build()
    return recipe


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def test_d_steps_every_step_and_g_every_n_critic_and_all_weights_move() -> None:
    recipe = _recipe(_config(n_critic=3))
    assert recipe.generator_key == "G" and set(recipe.networks) == {"G", "D"}
    g, d = recipe.networks["G"], recipe.networks["D"]
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    d_steps, g_steps, keys = [], [], []
    for step in range(6):
        torch.manual_seed(step)
        batch = collate([dataset.sample(i) for i in (2 * step, 2 * step + 1)])
        losses = recipe.train_step(batch, step)
        d_steps.append(_adam_steps(recipe.optimizers["D"]))
        g_steps.append(_adam_steps(recipe.optimizers["G"]))
        keys.append(set(losses))
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
        assert losses["d_gp"] > 0  # the penalty is there, and it is not trivially zero
    assert d_steps == [1, 2, 3, 4, 5, 6]
    assert g_steps == [0, 0, 1, 1, 1, 2]  # after steps 2 and 5: (step + 1) % 3 == 0
    d_only, with_g = (
        {"d_adv", "d_cls", "d_gp"},
        {"d_adv", "d_cls", "d_gp", "g_adv", "g_cls", "g_rec"},
    )
    assert keys == [d_only, d_only, with_g, d_only, d_only, with_g]
    assert 0 < losses["g_rec"] < 2 and 0 < losses["d_cls"] < 5 * 2  # per-face BCE sums, [-1,1]
    for name, network in (("G", g), ("D", d)):
        assert all(p.requires_grad for p in network.parameters())
        changed = [n for n, p in network.named_parameters() if not torch.equal(p, before[name][n])]
        assert len(changed) == len(before[name]), name


def test_the_gradient_penalty_reaches_ds_update() -> None:
    """The same D step with and without λ_gp: only the penalty can make them differ."""
    updates = []
    for lambda_gp in (10.0, 0.0):
        recipe = _recipe(_config(lambda_gp=lambda_gp))
        batch = collate([recipe.train_dataset().sample(i) for i in (0, 1)])
        torch.manual_seed(0)
        losses = recipe.train_step(batch, 0)
        updates.append(recipe.networks["D"].state_dict()["conv1.weight"].clone())
        assert losses["d_gp"] > 0  # computed (and logged) either way
    assert not torch.equal(updates[0], updates[1])


def test_the_mask_vector_sizes_the_networks_for_two_datasets() -> None:
    recipe = _recipe(_config(mask_vector=True, second_label_dim=8))
    g, d = recipe.networks["G"], recipe.networks["D"]
    assert isinstance(g, StarGANGenerator) and g.c_dim == 5 + 8 + 2
    assert d.state_dict()["conv2.weight"].shape[0] == 13
    batch = collate([recipe.train_dataset().sample(i) for i in (0, 1)])
    before = d.state_dict()["conv2.weight"].clone()
    recipe.train_step(batch, 0)
    after = d.state_dict()["conv2.weight"]
    # Only CelebA is labelled: its 5 classifier rows learn, RaFD's 8 get no gradient.
    assert not torch.equal(after[:5], before[:5]) and torch.equal(after[5:], before[5:])


def test_the_shipped_config_has_yunjeys_defaults_and_fits_the_cpu_budget() -> None:
    config = load_train_config("stargan-celeba")
    assert isinstance(config, StarGANConfig) and CONFIG_TYPES.get("stargan") is StarGANConfig
    assert list(config.attributes) == ATTRIBUTES
    assert (config.lambda_cls, config.lambda_rec, config.lambda_gp, config.n_critic) == (
        1,
        10,
        10,
        5,
    )
    assert (config.optim.lr, config.optim.beta1, config.optim.beta2) == (1e-4, 0.5, 0.999)
    assert (config.batch_size, config.data.size, config.data.dataset) == (
        16,
        64,
        "celeba_attributes",
    )
    assert (config.generator, config.discriminator) == (
        "stargan_tiny",
        "stargan_tiny_discriminator",
    )
    assert config.publish == "stargan-celeba" and not config.mask_vector
    assert config.build_steps is not None and config.build_steps < config.steps
    assert config.time_limit_s is not None and config.time_limit_s <= 900
    assert config.log_every % config.n_critic == 0  # G losses land in the metric rows
    with pytest.raises(InvalidInput, match="listed twice"):
        load_train_config("stargan-celeba", {"attributes": ["Male", "Male"]})
    with pytest.raises(InvalidInput, match="n_critic"):
        load_train_config("stargan-celeba", {"n_critic": 0})


def test_an_unknown_attribute_or_a_dataset_without_labels_is_refused() -> None:
    with pytest.raises(KeyError, match="'Purple_Hair'; known:"):
        _recipe(_config(attributes=["Purple_Hair", "Male"]))
    config = _config(**{"data.dataset": "celeba_hair"})
    recipe = RECIPES.get("stargan")(config, data_dir=DATA, device=torch.device("cpu"))
    with pytest.raises(TypeError, match="attribute labels"):
        recipe.build()


# --- runs, resume, evaluation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_cache(
    faces: tuple[CelebAAttributes, CelebAAttributes], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The attribute classifier the runs evaluate with, trained once for the module."""
    train_set, _ = faces
    cache = tmp_path_factory.mktemp("classifier")
    cached_attribute_classifier(train_set.faces(), train_set.selected(ATTRIBUTES), cache)
    return cache


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
    for name in ("G", "D"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    for name in ("G", "D"):
        assert (
            a["optimizers"][name]["state"][0]["step"] == b["optimizers"][name]["state"][0]["step"]
        )
    assert int(a["optimizers"]["D"]["state"][0]["step"]) == 8
    assert int(a["optimizers"]["G"]["state"][0]["step"]) == 4  # n_critic 2
    # The run saves the editor it serves: the trained G and D (whose classifier reads faces).
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    parts = {"generator.": a["networks"]["G"], "discriminator.": a["networks"]["D"]}
    assert len(exported) == sum(len(state) for state in parts.values())
    for prefix, state in parts.items():
        assert all(torch.equal(exported[prefix + k], v) for k, v in state.items()), prefix
    assert result.generator_architecture == "stargan_tiny_editor"

    names = [n.lower() for n in ATTRIBUTES]
    assert set(result.metrics) == {
        "classifier_real_acc",
        "identity_cos_other_people",
        "val_target_attr_acc",
        "val_identity_cos",
        "val_rec_l1",
        *(f"classifier_real_acc_{n}" for n in names),
        *(f"val_target_attr_acc_{n}" for n in names),
    }
    assert result.metrics == again.metrics
    assert result.metrics_at_init == again.metrics_at_init
    # The cached classifier was read, not trained again: still the one file.
    assert len(list((straight / EVALUATION_DIR).glob("attribute-classifier-*.pt"))) == 1
    assert result.metrics["classifier_real_acc"] > 0.75
    assert 0 < result.metrics["val_identity_cos"] <= 1
    assert set(result.last_losses) >= {"d_adv", "d_cls", "d_gp", "g_adv", "g_cls", "g_rec"}


class _Copy(nn.Module):
    """A translator that changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return x


def test_a_copying_translator_keeps_identity_and_changes_no_attribute(
    faces: tuple[CelebAAttributes, CelebAAttributes], classifier_cache: Path
) -> None:
    train_set, val = faces
    count = 12
    labels = val.selected(ATTRIBUTES)
    evaluator = AttributeTranslationEvaluator(
        train_set.faces(),
        train_set.selected(ATTRIBUTES),
        val.images(),
        labels,
        names=ATTRIBUTES,
        targets=create_labels(labels[:count], [0, 1, 2]),
        count=count,
        load_embedder=load_dlib_resnet,
        cache_dir=classifier_cache,
    )
    figures = evaluator(_Copy())
    assert figures["val_identity_cos"] == pytest.approx(1, abs=1e-5)
    assert figures["val_rec_l1"] == 0
    # A copy "changes" an attribute exactly when the classifier misjudges the real face.
    assert figures["val_target_attr_acc"] < 0.35
    assert 0.75 < figures["classifier_real_acc"] <= 1
    assert figures["classifier_real_acc_black_hair"] > 0.8
    assert 0.6 < figures["identity_cos_other_people"] < 0.92
    with pytest.raises(ValueError, match="target tensors"):
        AttributeTranslationEvaluator(
            train_set.faces(),
            train_set.selected(ATTRIBUTES),
            val.images(),
            labels,
            names=ATTRIBUTES,
            targets=create_labels(labels[:count], [0, 1, 2])[:4],
            count=count,
            load_embedder=load_dlib_resnet,
        )


def test_two_process_ddp_under_torchrun(tmp_path: Path, classifier_cache: Path) -> None:
    """G and D in DDP, the gradient penalty's double backward through the wrapped D (gloo)."""
    seed_evaluation_cache(classifier_cache, tmp_path / "checkpoints" / "ddp")
    result, _ = train_under_torchrun("stargan-celeba", {**SMALL, "steps": 4}, tmp_path)
    assert (result["world_size"], result["step"]) == (2, 4)
    assert "val_target_attr_acc" in result["metrics"]


# --- served as an editor --------------------------------------------------------------------


def test_the_editor_sets_clears_and_keeps_what_ds_classifier_reads() -> None:
    torch.manual_seed(0)
    editor = build_network("stargan_tiny_editor", c_dim=5, image_size=64).eval()
    assert isinstance(editor, StarGANEditor)
    faces = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        own = (editor.discriminator(faces)[1] > 0).float()
        keep = editor(faces, -torch.ones(2, 5))
        assert torch.equal(keep, editor.generator(faces, own))
        edit = torch.tensor([[1, 0, 0, -1, -1], [0, 0, 1, 1, 0]], dtype=torch.float32)
        target = torch.where(edit < 0, own, edit)
        assert torch.equal(editor(faces, edit), editor.generator(faces, target))


def test_a_mask_vector_editor_fills_gs_labels_as_celeba_rows() -> None:
    editor = build_network("stargan_tiny_editor", c_dim=5, image_size=64, second_label_dim=8)
    assert isinstance(editor, StarGANEditor)
    assert editor.generator.c_dim == 5 + 8 + 2
    faces = torch.rand(1, 3, 64, 64) * 2 - 1
    edit = torch.tensor([[1.0, 0, 0, 1, 0]])
    layout = LabelLayout(5, 8, mask_vector=True)
    with torch.no_grad():
        expected = editor.generator(faces, layout.generator_labels(edit))
        assert torch.equal(editor.eval()(faces, edit), expected)
