"""StarGAN v2: clovaai's key layout and nets_ema checkpoints, one-hot domain heads, the
exported container (ONNX), the hair-colour domains, the recipe's four updates, resume, and
the evaluation."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.errors import InvalidInput
from gantry.core.training import CONFIG_TYPES, StarGANv2Config, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN, seed_evaluation_cache, train_under_torchrun
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.stargan_v2 import (
    Discriminator,
    MappingNetwork,
    StarGANv2,
    StyleEncoder,
)
from trainer.data import build_dataset, collate
from trainer.data.attributes import CelebAAttributes
from trainer.data.domains import AttributeDomains
from trainer.evaluation import StyleTranslationEvaluator, cached_multi_domain_classifier
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.base import EVALUATION_DIR
from trainer.recipes.stargan_v2 import StarGANv2Recipe, diversity_weight
from trainer.weights.dlib import load_dlib_resnet
from trainer.weights.errors import WeightImportError
from trainer.weights.stargan_v2 import load_clovaai_nets_ema

HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair"]
Shapes = dict[str, tuple[int, ...]]


def _config(**overrides: Any) -> StarGANv2Config:
    config = load_train_config("stargan-v2-celeba-hair", {**SMALL_RUN, **overrides})
    assert isinstance(config, StarGANv2Config)
    return config


def _shapes(model: nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# --- clovaai's layout ------------------------------------------------------------------------
# Written out by hand from clovaai/stargan-v2 core/model.py: ResBlk (conv1 keeps the width,
# conv2 changes it; norm1 and norm2 both on dim_in; conv1x1 without bias when the width
# changes), AdainResBlk (conv1 changes the width; AdaIN fc to 2 x channels), Generator,
# MappingNetwork, StyleEncoder, Discriminator. Widths per block are listed per network.


def _resblk(prefix: str, a: int, b: int, norm: bool) -> Shapes:
    keys: Shapes = {
        f"{prefix}.conv1.weight": (a, a, 3, 3),
        f"{prefix}.conv1.bias": (a,),
        f"{prefix}.conv2.weight": (b, a, 3, 3),
        f"{prefix}.conv2.bias": (b,),
    }
    if norm:
        for n in ("norm1", "norm2"):
            keys |= {f"{prefix}.{n}.weight": (a,), f"{prefix}.{n}.bias": (a,)}
    if a != b:
        keys[f"{prefix}.conv1x1.weight"] = (b, a, 1, 1)
    return keys


def _adain_resblk(prefix: str, a: int, b: int, style: int) -> Shapes:
    keys: Shapes = {
        f"{prefix}.conv1.weight": (b, a, 3, 3),
        f"{prefix}.conv1.bias": (b,),
        f"{prefix}.conv2.weight": (b, b, 3, 3),
        f"{prefix}.conv2.bias": (b,),
        f"{prefix}.norm1.fc.weight": (2 * a, style),
        f"{prefix}.norm1.fc.bias": (2 * a,),
        f"{prefix}.norm2.fc.weight": (2 * b, style),
        f"{prefix}.norm2.fc.bias": (2 * b,),
    }
    if a != b:
        keys[f"{prefix}.conv1x1.weight"] = (b, a, 1, 1)
    return keys


def _generator(first: int, encode: list[tuple[int, int]], style: int) -> Shapes:
    keys: Shapes = {"from_rgb.weight": (first, 3, 3, 3), "from_rgb.bias": (first,)}
    for i, (a, b) in enumerate(encode):
        keys |= _resblk(f"encode.{i}", a, b, norm=True)
    # decode mirrors encode: block i of decode is encode block (n - 1 - i) reversed.
    for i, (b, a) in enumerate(reversed(encode)):
        keys |= _adain_resblk(f"decode.{i}", a, b, style)
    return keys | {
        "to_rgb.0.weight": (first,),
        "to_rgb.0.bias": (first,),
        "to_rgb.2.weight": (3, first, 1, 1),
        "to_rgb.2.bias": (3,),
    }


def _mapping(latent: int, hidden: int, style: int, domains: int) -> Shapes:
    keys: Shapes = {"shared.0.weight": (hidden, latent), "shared.0.bias": (hidden,)}
    for i in (2, 4, 6):
        keys |= {f"shared.{i}.weight": (hidden, hidden), f"shared.{i}.bias": (hidden,)}
    for k in range(domains):
        for i in (0, 2, 4):
            keys |= {f"unshared.{k}.{i}.weight": (hidden, hidden)}
            keys |= {f"unshared.{k}.{i}.bias": (hidden,)}
        keys |= {f"unshared.{k}.6.weight": (style, hidden), f"unshared.{k}.6.bias": (style,)}
    return keys


def _trunk(prefix: str, first: int, blocks: list[tuple[int, int]]) -> Shapes:
    keys: Shapes = {f"{prefix}.0.weight": (first, 3, 3, 3), f"{prefix}.0.bias": (first,)}
    for i, (a, b) in enumerate(blocks, start=1):
        keys |= _resblk(f"{prefix}.{i}", a, b, norm=False)
    last, conv = blocks[-1][1], len(blocks) + 2  # after the blocks: LeakyReLU, then the conv
    return keys | {f"{prefix}.{conv}.weight": (last, last, 4, 4), f"{prefix}.{conv}.bias": (last,)}


def _style_encoder(first: int, blocks: list[tuple[int, int]], style: int, domains: int) -> Shapes:
    keys = _trunk("shared", first, blocks)
    last = blocks[-1][1]
    for k in range(domains):
        keys |= {f"unshared.{k}.weight": (style, last), f"unshared.{k}.bias": (style,)}
    return keys


def _discriminator(first: int, blocks: list[tuple[int, int]], domains: int) -> Shapes:
    keys = _trunk("main", first, blocks)
    head, last = len(blocks) + 4, blocks[-1][1]  # trunk conv, LeakyReLU, then the 1x1 head
    return keys | {f"main.{head}.weight": (domains, last, 1, 1), f"main.{head}.bias": (domains,)}


# AFHQ (img_size 256, w_hpf 0, style 64, latent 16, 3 domains): first width 2**14 // 256.
AFHQ_G_ENCODE = [(64, 128), (128, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
AFHQ_TRUNK = [(64, 128), (128, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
# The tiny variant: first width 16, cap 64, two stages down in G, four in E and D (64 px).
TINY_G_ENCODE = [(16, 32), (32, 64), (64, 64), (64, 64)]
TINY_TRUNK = [(16, 32), (32, 64), (64, 64), (64, 64)]


def _afhq_nets_ema() -> dict[str, Shapes]:
    return {
        "generator": _generator(64, AFHQ_G_ENCODE, 64),
        "mapping_network": _mapping(16, 512, 64, 3),
        "style_encoder": _style_encoder(64, AFHQ_TRUNK, 64, 3),
    }


def _tiny_nets_ema(domains: int = 3) -> dict[str, Shapes]:
    return {
        "generator": _generator(16, TINY_G_ENCODE, 64),
        "mapping_network": _mapping(16, 128, 64, domains),
        "style_encoder": _style_encoder(16, TINY_TRUNK, 64, domains),
    }


def test_the_afhq_networks_have_clovaais_keys_and_shapes() -> None:
    with torch.device("meta"):
        nets = build_network("stargan_v2_afhq")
        d = build_network("stargan_v2_afhq_discriminator")
    assert isinstance(nets, StarGANv2) and isinstance(d, Discriminator)
    expected = _afhq_nets_ema()
    for name, keys in expected.items():
        assert _shapes(getattr(nets, name)) == keys, name
    assert _shapes(d) == _discriminator(64, AFHQ_TRUNK, 3)
    # The container is clovaai's nets_ema flattened: <network>.<key>, nothing else.
    flat = {f"{n}.{k}": v for n, keys in expected.items() for k, v in keys.items()}
    assert _shapes(nets) == flat
    # No buffers: clovaai's instance norms keep no running statistics.
    assert len(nets.state_dict()) == len(list(nets.parameters()))
    # A few entries spelled out in full, against a bug shared by the table and the code.
    shapes = _shapes(nets)
    assert shapes["generator.encode.3.conv2.weight"] == (512, 512, 3, 3)
    assert "generator.encode.3.conv1x1.weight" not in shapes  # 512 → 512: no learned shortcut
    assert shapes["generator.decode.5.conv1x1.weight"] == (64, 128, 1, 1)
    assert shapes["generator.decode.2.norm1.fc.weight"] == (1024, 64)
    assert shapes["style_encoder.shared.8.weight"] == (512, 512, 4, 4)
    assert shapes["mapping_network.unshared.2.6.weight"] == (64, 512)
    assert _shapes(d)["main.10.weight"] == (3, 512, 1, 1)
    counts = [sum(p.numel() for p in getattr(nets, n).parameters()) for n in expected]
    assert counts == [33_892_995, 3_259_072, 20_949_760]  # the table's sums
    assert sum(p.numel() for p in d.parameters()) == 20_852_803


def test_the_tiny_variants_have_the_same_layout_and_run_at_64_px() -> None:
    torch.manual_seed(0)
    nets = build_network("stargan_v2_tiny", num_domains=4)
    d = build_network("stargan_v2_tiny_discriminator", num_domains=4)
    assert isinstance(nets, StarGANv2) and isinstance(d, Discriminator)
    for name, keys in _tiny_nets_ema(4).items():
        assert _shapes(getattr(nets, name)) == keys, name
    assert _shapes(d) == _discriminator(16, TINY_TRUNK, 4)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    domain = F.one_hot(torch.tensor([3, 0]), 4).float()
    y = nets(x, x.flip(0), torch.randn(2, 16), domain, torch.tensor([[1.0], [0.0]]))
    assert y.shape == (2, 3, 64, 64) and bool(torch.isfinite(y).all())
    assert d(x, domain).shape == (2,)
    with pytest.raises(ValueError, match=r"one-hot \(2, 4\)"):
        d(x, F.one_hot(torch.tensor([0, 1]), 3).float())
    with pytest.raises(ValueError, match="built for 64x64"):
        nets.style_encoder(torch.zeros(1, 3, 32, 32), domain[:1])
    with pytest.raises(ValueError, match="multiples of 4"):
        nets.generator(torch.zeros(1, 3, 62, 62), torch.zeros(1, 64))
    with pytest.raises(ValueError, match="power of 2"):
        StyleEncoder(img_size=48)


def test_the_one_hot_picks_what_clovaais_index_picks_and_only_that_head_learns() -> None:
    torch.manual_seed(0)
    f = MappingNetwork(16, 8, num_domains=3, hidden_dim=32)
    z, y = torch.randn(4, 16), torch.tensor([2, 0, 1, 2])
    # clovaai: out = stack(heads, dim=1); s = out[arange(N), y].
    h = f.shared(z)
    stacked = torch.stack([head(h) for head in f.unshared], dim=1)
    assert torch.allclose(f(z, F.one_hot(y, 3).float()), stacked[torch.arange(4), y], atol=1e-6)
    f(z[:1], F.one_hot(y[:1], 3).float()).sum().backward()  # a domain-2 code
    grads = [float(head[0].weight.grad.abs().sum()) for head in f.unshared]  # type: ignore[index]
    assert grads[2] > 0 and grads[0] == grads[1] == 0
    d = build_network("stargan_v2_tiny_discriminator")
    assert isinstance(d, Discriminator)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    logits = d.main(x).flatten(1)
    assert torch.allclose(d(x, F.one_hot(y, 3).float()), logits[torch.arange(4), y], atol=1e-6)


def test_the_container_exports_to_onnx_and_matches_onnxruntime(tmp_path: Path) -> None:
    torch.manual_seed(0)
    nets = build_network("stargan_v2_tiny").eval()
    names = ["image", "reference", "z", "domain", "use_reference"]

    def inputs(n: int, seed: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return (
            torch.rand(n, 3, 64, 64, generator=g) * 2 - 1,
            torch.rand(n, 3, 64, 64, generator=g) * 2 - 1,
            torch.randn(n, 16, generator=g),
            F.one_hot(torch.arange(n) % 3, 3).float(),
            (torch.arange(n) % 2).float().view(n, 1),  # both guides in one batch
        )

    path = tmp_path / "stargan_v2.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            nets,
            inputs(2, 0),
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_axes={n: {0: "batch"} for n in [*names, "output"]},
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = inputs(5, 1)  # another batch size than traced
    (got,) = session.run(None, {n: t.numpy() for n, t in zip(names, probe, strict=True)})
    with torch.no_grad():
        want = nets(*probe).numpy()
    assert got.shape == (5, 3, 64, 64)
    assert float(np.abs(got - want).max()) < 1e-3
    # The reference path and the latent path both matter: swapping the flag changes output.
    flipped = {n: t.numpy() for n, t in zip(names, probe, strict=True)}
    flipped["use_reference"] = 1 - flipped["use_reference"]
    assert float(np.abs(session.run(None, flipped)[0] - got).max()) > 1e-2


# --- clovaai's nets_ema checkpoints ----------------------------------------------------------


def _synthetic_nets_ema(shapes: dict[str, Shapes], seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    return {
        name: {key: torch.randn(shape, generator=g) for key, shape in keys.items()}
        for name, keys in shapes.items()
    }


def test_a_clovaai_nets_ema_checkpoint_loads_strict(tmp_path: Path) -> None:
    ckpt = _synthetic_nets_ema(_tiny_nets_ema())
    # Saved from a DataParallel-wrapped network: keys prefixed with "module.".
    ckpt["style_encoder"] = {f"module.{k}": v for k, v in ckpt["style_encoder"].items()}
    path = tmp_path / "100000_nets_ema.ckpt"
    torch.save(ckpt, path)
    nets = load_clovaai_nets_ema(path, "stargan_v2_tiny")
    assert not nets.training
    state = nets.state_dict()
    for name, part in ckpt.items():
        for key, value in part.items():
            assert torch.equal(state[f"{name}.{key.removeprefix('module.')}"], value)

    with pytest.raises(WeightImportError, match="w_hpf > 0"):
        load_clovaai_nets_ema({**ckpt, "fan": {}}, "stargan_v2_tiny")
    with pytest.raises(WeightImportError, match=r"missing \['style_encoder'\]"):
        load_clovaai_nets_ema({k: v for k, v in ckpt.items() if k != "style_encoder"})
    # A two-domain file (clovaai's CelebA-HQ layout of F and E) into three heads.
    two = _synthetic_nets_ema(_tiny_nets_ema(domains=2))
    with pytest.raises(WeightImportError, match=r"missing keys: mapping_network\.unshared\.2"):
        load_clovaai_nets_ema(two, "stargan_v2_tiny")
    assert isinstance(load_clovaai_nets_ema(two, "stargan_v2_tiny", num_domains=2), StarGANv2)


# --- data ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domains() -> tuple[AttributeDomains, AttributeDomains]:
    train_set = build_dataset("celeba_attributes", DATA, "train", 64)
    val = build_dataset("celeba_attributes", DATA, "val", 64)
    assert isinstance(train_set, CelebAAttributes) and isinstance(val, CelebAAttributes)
    return AttributeDomains(train_set, HAIR), AttributeDomains(val, HAIR)


def test_the_hair_domains_take_faces_with_one_colour_and_draw_them_balanced(
    domains: tuple[AttributeDomains, AttributeDomains],
) -> None:
    train_set, val = domains
    # Of celeba_attributes' 4,700 / 300 faces, those labelled with exactly one colour.
    assert [len(ids) for ids in train_set.by_domain] == [1092, 605, 869]
    assert [len(ids) for ids in val.by_domain] == [98, 99, 100]
    assert len(train_set) == 3 * 1092
    assert [int(train_set.sample(i)["domain"]) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    labels = train_set.faces.selected(HAIR)
    for i in (1, 4, 3 * 605 + 1):  # blond faces, the last one wrapped around
        face = train_set.by_domain[1][(i // 3) % 605]
        assert labels[face].tolist() == [0, 1, 0]
    assert train_set.sample(4)["image"].shape == (3, 64, 64)
    # The held-aside order keeps the split's interleaving of colours.
    assert val.labels(6).tolist() == [0, 1, 2, 0, 1, 2]
    assert val.images(6).shape == (6, 3, 64, 64)
    assert set(val.faces.files).isdisjoint(train_set.faces.files)


# --- the recipe -----------------------------------------------------------------------------


def _recipe(config: StarGANv2Config) -> StarGANv2Recipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("stargan_v2")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, StarGANv2Recipe)
    recipe.build()
    return recipe


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    return int(next(iter(optimizer.state.values()))["step"])


def test_a_step_makes_four_updates_moves_every_network_and_refreshes_the_container() -> None:
    recipe = _recipe(_config())
    assert recipe.generator_key == "nets"
    assert set(recipe.networks) == {
        "generator",
        "mapping_network",
        "style_encoder",
        "discriminator",
        "nets",
    }
    nets = recipe.networks["nets"]
    assert isinstance(nets, StarGANv2) and not any(p.requires_grad for p in nets.parameters())
    assert recipe.networks["generator"] is not nets.generator  # trained apart, then copied
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    lrs = {k: o.param_groups[0]["lr"] for k, o in recipe.optimizers.items()}
    assert lrs == {
        "generator": 3e-4,
        "mapping_network": pytest.approx(3e-6),
        "style_encoder": 3e-4,
        "discriminator": 3e-4,
    }
    assert {o.param_groups[0]["weight_decay"] for o in recipe.optimizers.values()} == {1e-4}
    dataset = recipe.train_dataset()
    for step in range(2):
        torch.manual_seed(step)
        losses = recipe.train_step(collate([dataset.sample(i) for i in (step, step + 3)]), step)
        assert all(np.isfinite(v) for v in losses.values())
    assert set(losses) == {
        *(f"d_{m}_{k}" for m in ("latent", "ref") for k in ("adv", "reg")),
        *(f"g_{m}_{k}" for m in ("latent", "ref") for k in ("adv", "sty", "ds", "cyc")),
        "lambda_ds",
    }
    assert losses["d_latent_reg"] > 0 and losses["g_ref_ds"] > 0
    assert 0 < losses["g_latent_cyc"] < 2  # mean |x_rec - x| in [-1, 1] units
    assert losses["lambda_ds"] == pytest.approx(1 - 1 / recipe.config.steps)
    # Two D and two G updates a step; F and E only in the latent-guided G update.
    steps = {k: _adam_steps(o) for k, o in recipe.optimizers.items()}
    assert steps == {"discriminator": 4, "generator": 4, "mapping_network": 2, "style_encoder": 2}
    for name in ("generator", "mapping_network", "style_encoder", "discriminator"):
        network = recipe.networks[name]
        changed = [n for n, p in network.named_parameters() if not torch.equal(p, before[name][n])]
        assert len(changed) == len(before[name]), name
        assert all(p.requires_grad for p in network.parameters())
    for name in ("generator", "mapping_network", "style_encoder"):
        live, mirror = recipe.networks[name].state_dict(), getattr(nets, name).state_dict()
        assert all(torch.equal(live[k], mirror[k]) for k in live), name


def test_the_r1_penalty_reaches_ds_update() -> None:
    """The same D update with and without λ_reg: only R1 can make them differ."""
    updates = []
    for lambda_reg in (1.0, 0.0):
        recipe = _recipe(_config(lambda_reg=lambda_reg))
        x = collate([recipe.train_dataset().sample(i) for i in (0, 1)])
        y = F.one_hot(x["domain"], 3).float()
        torch.manual_seed(0)
        loss, parts = recipe._d_loss(x["image"], y, y.flip(0), torch.randn(2, 16))
        recipe.optimize("discriminator", loss)
        updates.append(recipe.networks["discriminator"].state_dict()["main.0.weight"].clone())
        assert parts["reg"] > 0
    assert not torch.equal(updates[0], updates[1])


def test_the_diversity_weight_decays_linearly_to_zero() -> None:
    assert [diversity_weight(2.0, s, 4) for s in (0, 1, 2, 4, 9)] == [2.0, 1.5, 1.0, 0.0, 0.0]


def test_references_are_training_faces_of_the_target_domain() -> None:
    recipe = _recipe(_config(**{"data.flip": False}))
    torch.manual_seed(3)
    targets = torch.tensor([0, 1, 2, 1, 1, 2])
    first, second = recipe.references(targets)
    assert first.shape == second.shape == (6, 3, 64, 64)
    assert not torch.equal(first, second)
    train_set = recipe.train_dataset()
    assert isinstance(train_set, AttributeDomains)
    for faces in (first, second):
        for face, d in zip(faces, targets.tolist(), strict=True):
            pool = train_set.domain_faces(d).float() / 127.5 - 1
            assert bool((pool - face).abs().flatten(1).amax(1).eq(0).any()), d


def test_the_shipped_config_has_clovaais_settings() -> None:
    config = load_train_config("stargan-v2-celeba-hair")
    assert isinstance(config, StarGANv2Config) and CONFIG_TYPES.get("stargan_v2") is StarGANv2Config
    assert list(config.domains) == HAIR
    assert (config.lambda_reg, config.lambda_sty, config.lambda_ds, config.lambda_cyc) == (
        1,
        1,
        1,
        1,
    )
    assert (config.optim.beta1, config.optim.beta2) == (0.0, 0.99)
    # Sized for a CPU run (the YAML says why): clovaai's lr 1e-4 and EMA 0.999 by default.
    assert (config.optim.lr, config.ema_decay, config.batch_size) == (3e-4, 0.99, 4)
    assert StarGANv2Config.model_fields["optim"].default.lr == 1e-4
    assert (config.mapping_lr_scale, config.weight_decay, config.ds_steps) == (0.01, 1e-4, None)
    assert (config.data.dataset, config.data.size) == ("celeba_attributes", 64)
    assert (config.networks, config.discriminator) == (
        "stargan_v2_tiny",
        "stargan_v2_tiny_discriminator",
    )
    assert config.publish == "stargan-v2-celeba-hair" and config.build_steps is not None
    assert StarGANv2Config.model_fields["ema_decay"].default == 0.999  # clovaai's
    with pytest.raises(InvalidInput, match="listed twice"):
        load_train_config("stargan-v2-celeba-hair", {"domains": ["Blond_Hair", "Blond_Hair"]})
    with pytest.raises(InvalidInput, match="domains"):
        load_train_config("stargan-v2-celeba-hair", {"domains": ["Blond_Hair"]})


def test_networks_built_for_another_size_or_data_without_labels_are_refused() -> None:
    with pytest.raises(ValueError, match=r"must be built for data\.size 32"):
        _recipe(_config(**{"data.size": 32}))
    config = _config(**{"data.dataset": "celeba_hair"})
    recipe = RECIPES.get("stargan_v2")(config, data_dir=DATA, device=torch.device("cpu"))
    with pytest.raises(TypeError, match="attribute labels"):
        recipe.build()


# --- runs, resume, evaluation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_cache(
    domains: tuple[AttributeDomains, AttributeDomains], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The hair-colour classifier the runs evaluate with, trained once for the module."""
    train_set, _ = domains
    faces = torch.cat([train_set.domain_faces(d) for d in range(3)])
    labels = torch.repeat_interleave(torch.arange(3), torch.tensor([1092, 605, 869]))
    cache = tmp_path_factory.mktemp("classifier")
    cached_multi_domain_classifier(faces, labels, cache)
    return cache


def test_a_resumed_run_repeats_the_uninterrupted_one_and_exports_the_container(
    tmp_path: Path, classifier_cache: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for run_dir in (straight, resumed):
        seed_evaluation_cache(classifier_cache, run_dir)
    result = train(_config(steps=4), straight, data_dir=DATA, device="cpu")
    train(_config(steps=4, time_limit_s=0.01), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=4), resumed, data_dir=DATA, device="cpu")
    assert (again.resumed_from, again.step) == (1, 4)

    a = checkpointing.load(straight / "checkpoints" / "step-000004.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000004.pt")
    for name in a["networks"]:
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert result.metrics == again.metrics and result.metrics_at_init == again.metrics_at_init

    # generator.pth is the EMA container: it loads strict into the registered serving module.
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    assert all(torch.equal(exported[k], a["ema"][k]) for k in exported)
    served = build_network(result.generator_architecture)
    served.load_state_dict(exported, strict=True)
    assert result.generator_architecture == "stargan_v2_tiny"
    live = a["networks"]["generator"]
    assert not torch.equal(exported["generator.from_rgb.weight"], live["from_rgb.weight"])  # EMA

    names = ["black_hair", "blond_hair", "brown_hair"]
    per_domain = [
        f"{f}_{n}" for f in ("val_domain_acc_latent", "val_domain_acc_reference") for n in names
    ]
    assert set(result.metrics) == {
        "classifier_real_acc",
        *(f"classifier_real_acc_{n}" for n in names),
        "identity_cos_other_people",
        "val_domain_acc_latent",
        "val_domain_acc_reference",
        *per_domain,
        "val_identity_cos",
        "val_identity_cos_latent",
        "val_identity_cos_reference",
        "val_latent_diversity_l1",
    }
    assert len(list((straight / EVALUATION_DIR).glob("multi-domain-classifier-*.pt"))) == 1
    assert result.metrics["classifier_real_acc"] > 0.75
    assert 0 < result.metrics["val_identity_cos"] <= 1
    assert result.metrics["val_latent_diversity_l1"] > 0  # two codes, two outputs
    assert (straight / "samples" / "step-000004.png").is_file()


class _Copy(nn.Module):
    """A translator that changes nothing."""

    num_domains = 3

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, *_: torch.Tensor) -> torch.Tensor:
        return image


def test_a_copying_translator_keeps_identity_and_reaches_no_other_domain(
    domains: tuple[AttributeDomains, AttributeDomains], classifier_cache: Path
) -> None:
    train_set, val = domains
    evaluator = StyleTranslationEvaluator(
        torch.cat([train_set.domain_faces(d) for d in range(3)]),
        torch.repeat_interleave(torch.arange(3), torch.tensor([1092, 605, 869])),
        val.images(),
        val.labels(),
        names=HAIR,
        count=30,
        latent_dim=16,
        load_embedder=load_dlib_resnet,
        cache_dir=classifier_cache,
    )
    assert len(evaluator.targets) == 60  # each face to both other colours
    assert bool((evaluator.targets != val.labels()[evaluator.sources]).all())
    # Each reference is a held-aside face of the target colour.
    assert torch.equal(val.labels()[evaluator.references], evaluator.targets)
    figures = evaluator(_Copy())
    assert figures["val_identity_cos"] == pytest.approx(1, abs=1e-5)
    assert figures["val_latent_diversity_l1"] == 0
    # A copy reaches another colour exactly when the classifier misjudges the real face.
    assert figures["val_domain_acc_latent"] == figures["val_domain_acc_reference"] < 0.3
    assert 0.75 < figures["classifier_real_acc"] <= 1
    assert 0.6 < figures["identity_cos_other_people"] < 0.92
    with pytest.raises(ValueError, match="every domain"):
        StyleTranslationEvaluator(
            torch.zeros(3, 3, 64, 64),
            torch.tensor([0, 1, 2]),
            val.images(4),
            torch.tensor([0, 1, 0, 1]),
            names=HAIR,
            count=4,
            latent_dim=16,
            load_embedder=load_dlib_resnet,
        )


def test_two_process_ddp_under_torchrun(tmp_path: Path, classifier_cache: Path) -> None:
    """G, F, E and D each in DDP: F sits out the reference-guided updates, R1's double
    backward goes through the wrapped D, and ``nets`` (no gradients) stays unwrapped."""
    seed_evaluation_cache(classifier_cache, tmp_path / "checkpoints" / "ddp")
    result, _ = train_under_torchrun("stargan-v2-celeba-hair", {**SMALL_RUN, "steps": 3}, tmp_path)
    assert (result["world_size"], result["step"]) == (2, 3)
    assert "val_domain_acc_reference" in result["metrics"]
    assert np.isfinite(result["last_losses"]["g_ref_cyc"])
