"""IcGAN: Guim3/IcGAN's layer layout, the editor's forward and its ONNX export, the recipe's
three stages (what each trains and what it freezes), resume across a stage boundary, the
evaluation, and the config."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gantry.core.errors import InvalidInput
from gantry.core.training import CONFIG_TYPES, IcGANConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN, seed_evaluation_cache
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.icgan import IcGAN, IcGANDiscriminator, IcGANEncoder, IcGANGenerator
from trainer.data import build_dataset, collate
from trainer.data.attributes import CelebAAttributes
from trainer.evaluation import cached_attribute_classifier
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.icgan import IcGANRecipe, keep_own

ATTRIBUTES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
# Three cGAN steps, three E_z steps, two E_y steps, tiny networks, a short BN refresh.
STAGES = {"stage_steps.cgan": 3, "stage_steps.encoder_z": 3, "stage_steps.encoder_y": 2}
SMALL = {
    **SMALL_RUN,
    **STAGES,
    "generator": "icgan_tiny",
    "discriminator": "icgan_tiny_discriminator",
    "bn_refresh_batches": 4,
}


def _config(**overrides: Any) -> IcGANConfig:
    config = load_train_config("icgan-celeba", {**SMALL, **overrides})
    assert isinstance(config, IcGANConfig)
    return config


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _norm(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    keys = {f"{prefix}.{p}": (channels,) for p in ("weight", "bias", "running_mean", "running_var")}
    return keys | {f"{prefix}.num_batches_tracked": ()}


def _conv(prefix: str, weight: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    # Torch's convolutions (and Linear) have biases; ConvTranspose2d weights are (in, out, k, k).
    out = weight[1] if prefix.startswith("generator") else weight[0]
    return {f"{prefix}.weight": weight, f"{prefix}.bias": (out,)}


# --- Guim3/IcGAN's layout --------------------------------------------------------------------
# Written out by hand from trainGAN.lua (netG, netD at fineSize 64, nz 100, ngf = ndf = 64)
# and trainEncoder.lua's getEncoder (nf 32, nConvLayers 4; FCsz nil for Z, 512 for Y).


def test_the_celeba_generator_and_encoders_have_upstreams_layers() -> None:
    with torch.device("meta"):
        icgan = build_network("icgan_celeba", ny=5)
    assert isinstance(icgan, IcGAN)
    expected = {
        **_conv("generator.main.0", (105, 512, 4, 4)),  # nz 100 + ny 5 at 1x1 → 512 x 4x4
        **_norm("generator.main.1", 512),
        **_conv("generator.main.3", (512, 256, 4, 4)),
        **_norm("generator.main.4", 256),
        **_conv("generator.main.6", (256, 128, 4, 4)),
        **_norm("generator.main.7", 128),
        **_conv("generator.main.9", (128, 64, 4, 4)),
        **_norm("generator.main.10", 64),
        **_conv("generator.main.12", (64, 3, 4, 4)),
    }
    for name, fc, out in (("encoder_z", 4096, 100), ("encoder_y", 512, 5)):
        expected |= {
            **_conv(f"{name}.main.0", (32, 3, 5, 5)),
            **_norm(f"{name}.main.1", 32),
            **_conv(f"{name}.main.3", (64, 32, 5, 5)),
            **_norm(f"{name}.main.4", 64),
            **_conv(f"{name}.main.6", (128, 64, 5, 5)),
            **_norm(f"{name}.main.7", 128),
            **_conv(f"{name}.main.9", (256, 128, 5, 5)),
            **_norm(f"{name}.main.10", 256),
            # main.12 flattens 256 x 4 x 4
            **_conv(f"{name}.main.13", (fc, 4096)),
            **_norm(f"{name}.main.14", fc),
            **_conv(f"{name}.main.16", (out, fc)),
        }
    assert _shapes(icgan) == expected
    # netG's parameters: 105·512·16 + 512 + 512·256·16 + 256 + 256·128·16 + 128
    # + 128·64·16 + 64 + 64·3·16 + 3, and the norms' 2·(512 + 256 + 128 + 64).
    assert sum(p.numel() for p in icgan.generator.parameters()) == 3_616_707 + 1_920


def test_the_celeba_discriminator_joins_y_after_the_first_conv() -> None:
    with torch.device("meta"):
        d = build_network("icgan_celeba_discriminator", ny=5)
    expected = {
        "x_conv.0.weight": (64, 3, 4, 4),  # Xconv: the image only
        "x_conv.0.bias": (64,),
        "main.0.weight": (128, 64 + 5, 4, 4),  # ndf + ny: y replicated over 32x32
        "main.0.bias": (128,),
        **_norm("main.1", 128),
        "main.3.weight": (256, 128, 4, 4),
        "main.3.bias": (256,),
        **_norm("main.4", 256),
        "main.6.weight": (512, 256, 4, 4),
        "main.6.bias": (512,),
        **_norm("main.7", 512),
        "main.9.weight": (1, 512, 4, 4),  # 4x4 → one logit (upstream adds the Sigmoid)
        "main.9.bias": (1,),
    }
    assert _shapes(d) == expected


def test_the_small_variants_run_at_64_px_and_check_their_inputs() -> None:
    torch.manual_seed(0)
    icgan = build_network("icgan_tiny", ny=4)
    d = build_network("icgan_tiny_discriminator", ny=4, image_size=64)
    assert isinstance(icgan, IcGAN) and isinstance(d, IcGANDiscriminator)
    z, y = torch.randn(2, 100), torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0]])
    with torch.no_grad():
        x = icgan.generator(z, y)
    assert x.shape == (2, 3, 64, 64) and float(x.abs().max()) <= 1
    assert d(x, y).shape == (2,)
    assert icgan.encoder_z(x).shape == (2, 100) and icgan.encoder_y(x).shape == (2, 4)
    with pytest.raises(ValueError, match=r"y \(N, 4\)"):
        icgan.generator(z, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="built for"):
        d(torch.zeros(2, 3, 32, 32), y)
    with pytest.raises(ValueError, match="built for 64x64"):
        icgan.encoder_z(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="power of two"):
        IcGANGenerator(image_size=48)
    with pytest.raises(ValueError, match="multiple of 2"):
        IcGANEncoder(5, image_size=40)
    small = build_network("icgan_small", ny=5)
    assert isinstance(small, IcGAN) and _shapes(small)["generator.main.0.weight"] == (
        105,
        256,
        4,
        4,
    )


def test_labels_enter_as_minus_one_and_one() -> None:
    """G and D read 0/1 attributes as CelebA's -1/1 coding, as upstream feeds them."""
    torch.manual_seed(0)
    g = IcGANGenerator(nz=3, ny=2, ngf=8, image_size=8).eval()
    first = g.main[0]
    assert isinstance(first, nn.ConvTranspose2d)
    z, y = torch.randn(1, 3), torch.tensor([[1.0, 0.0]])
    joined = torch.cat([z, torch.tensor([[1.0, -1.0]])], 1)[:, :, None, None]
    with torch.no_grad():
        assert torch.allclose(g.main(joined), g(z, y))


# --- the editor -----------------------------------------------------------------------------


def _editor() -> IcGAN:
    torch.manual_seed(3)
    icgan = build_network("icgan_tiny", ny=5)
    assert isinstance(icgan, IcGAN)
    for m in icgan.modules():  # non-trivial running statistics, as a trained one has
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return icgan.eval()


def test_the_editor_keeps_the_faces_own_attributes_only_where_asked() -> None:
    icgan = _editor()
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    asked = torch.tensor([[1.0, 0, -1, 1, -1], [-1, -1, -1, -1, -1], [0, 1, 0, 0, 1]])
    with torch.no_grad():
        z, logits = icgan.encoder_z(x), icgan.encoder_y(x)
        own = (torch.sigmoid(logits) > 0.5).float()
        y = torch.where(asked < 0, own, asked)
        expected = icgan.generator(z, y)
        out = icgan(x, asked)
        assert torch.allclose(out, expected, atol=1e-6)
        # Fully specified attributes do not read E_y at all; all-keep is the reconstruction.
        assert torch.allclose(icgan(x[2:], asked[2:]), icgan.generator(z[2:], asked[2:]))
        assert torch.allclose(icgan(x, keep_own(3, 5)), icgan.generator(z, own), atol=1e-6)
        # E_y's reading decides: the opposite reading would give another image.
        flipped = torch.where(asked < 0, 1 - own, asked)
        assert not torch.equal(icgan.generator(z, flipped), out)


def test_onnx_export_matches_pytorch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    icgan = _editor()
    path = tmp_path / "icgan.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            icgan,
            (torch.zeros(1, 3, 64, 64), keep_own(1, 5)),
            str(path),
            input_names=["image", "attributes"],
            output_names=["edited"],
            dynamic_axes={
                "image": {0: "batch"},
                "attributes": {0: "batch"},
                "edited": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(4)
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    attributes = torch.tensor(
        [[1.0, 0, -1, 1, -1], [-1, -1, -1, -1, -1], [0, 1, 0, 0, 1], [-1, 1, -1, 0, -1]]
    )
    for size in (1, 4):  # a batch size other than the traced one
        (edited,) = session.run(
            None, {"image": x[:size].numpy(), "attributes": attributes[:size].numpy()}
        )
        with torch.no_grad():
            expected = icgan(x[:size], attributes[:size]).numpy()
        assert edited.shape == (size, 3, 64, 64)
        assert float(np.abs(edited - expected).max()) < 1e-3


# --- the recipe -----------------------------------------------------------------------------


def _recipe(config: IcGANConfig) -> IcGANRecipe:
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("icgan")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, IcGANRecipe)
    recipe.build()
    return recipe


def _adam_steps(optimizer: torch.optim.Optimizer) -> int:
    states = [s for s in optimizer.state.values() if "step" in s]
    return int(states[0]["step"]) if states else 0


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _moved(module: nn.Module, before: dict[str, torch.Tensor], buffers: bool = False) -> set[str]:
    names = {n for n, _ in module.named_parameters()}
    return {
        k
        for k, v in module.state_dict().items()
        if (buffers or k in names) and not torch.equal(v, before[k])
    }


def test_each_stage_trains_its_part_and_freezes_the_rest() -> None:
    recipe = _recipe(_config())
    assert recipe.generator_key == "IcGAN" and set(recipe.networks) == {"IcGAN", "D"}
    assert set(recipe.optimizers) == {"G", "D", "E_z", "E_y"}
    assert [recipe.stage(s) for s in range(8)] == ["cgan"] * 3 + ["encoder_z"] * 3 + [
        "encoder_y"
    ] * 2
    icgan, d = recipe.icgan, recipe.networks["D"]
    parts = {"G": icgan.generator, "E_z": icgan.encoder_z, "E_y": icgan.encoder_y, "D": d}
    dataset = recipe.train_dataset()
    trained: dict[str, set[str]] = {}
    for step in range(8):
        before = {name: _snapshot(part) for name, part in parts.items()}
        torch.manual_seed(step)
        batch = collate([dataset.sample(i) for i in (2 * step, 2 * step + 1)])
        losses = recipe.train_step(batch, step)
        assert all(np.isfinite(v) for v in losses.values())
        stage = recipe.stage(step)
        assert losses["stage"] == {"cgan": 1, "encoder_z": 2, "encoder_y": 3}[stage]
        moved = {name for name, part in parts.items() if _moved(part, before[name])}
        everything = {
            name: _moved(part, before[name], buffers=True) for name, part in parts.items()
        }
        if stage == "cgan":
            assert set(losses) == {"stage", "d", "d_real", "g"}
            assert moved == {"G", "D"}
            for name in ("G", "D"):  # every weight of both
                assert len(_moved(parts[name], before[name])) == len(list(parts[name].parameters()))
        elif stage == "encoder_z":
            assert set(losses) == {"stage", "e_z_mse"} and moved == {"E_z"}
            # G's weights never move again; its statistics only at the refresh (step 3).
            assert bool(everything["G"]) == (step == 3)
            assert not everything["D"] and not everything["E_y"]
        else:
            assert set(losses) == {"stage", "e_y_bce", "e_y_acc"} and moved == {"E_y"}
            assert not everything["G"] and not everything["E_z"] and not everything["D"]
        trained[stage] = trained.get(stage, set()) | moved
    assert {k: _adam_steps(o) for k, o in recipe.optimizers.items()} == {
        "G": 3,
        "D": 3,
        "E_z": 3,
        "E_y": 2,
    }
    assert not icgan.generator.training  # frozen G generates with its running statistics


def test_the_refresh_reestimates_gs_statistics_from_fresh_batches() -> None:
    recipe = _recipe(_config(**{"bn_refresh_batches": 5}))
    g = recipe.icgan.generator
    norm = g.main[1]
    assert isinstance(norm, nn.BatchNorm2d) and norm.running_mean is not None
    norm.running_mean.fill_(7.0)  # stale statistics the refresh must not average in
    torch.manual_seed(0)
    recipe.refresh_generator_statistics(batch_size=3)
    tracked = norm.num_batches_tracked
    assert tracked is not None and int(tracked) == 5 and norm.momentum == 0.1
    assert float(norm.running_mean.abs().max()) < 1
    # Averaged over the five batches of the same draws, by hand.
    torch.manual_seed(0)
    labels = recipe._train_labels
    means = []
    first = g.main[0]
    g.train()
    with torch.no_grad():
        for _ in range(5):
            rows = torch.randint(len(labels), (3,))
            z = torch.randn(3, 100)
            signed = labels[rows] * 2 - 1
            h = first(torch.cat([z, signed], 1)[:, :, None, None])
            means.append(h.mean(dim=(0, 2, 3)))
    assert torch.allclose(norm.running_mean, torch.stack(means).mean(0), atol=1e-5)


def test_mismatched_labels_reach_ds_loss() -> None:
    updates = []
    for wrong in (True, False):
        recipe = _recipe(_config(train_wrong_y=wrong))
        batch = collate([recipe.train_dataset().sample(i) for i in (0, 1)])
        torch.manual_seed(0)
        recipe.train_step(batch, 0)
        updates.append(recipe.networks["D"].state_dict()["main.0.weight"].clone())
    assert not torch.equal(updates[0], updates[1])


def test_several_processes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda *a, **k: 2)
    with pytest.raises(ValueError, match="one process"):
        _recipe(_config())


def test_an_unknown_attribute_or_a_dataset_without_labels_is_refused() -> None:
    with pytest.raises(KeyError, match="'Purple_Hair'; known:"):
        _recipe(_config(attributes=["Purple_Hair", "Male"]))
    recipe = RECIPES.get("icgan")(
        _config(**{"data.dataset": "celeba_hair"}), data_dir=DATA, device=torch.device("cpu")
    )
    with pytest.raises(TypeError, match="attribute labels"):
        recipe.build()
    with pytest.raises(ValueError, match="64 px"):
        _recipe(_config(**{"data.size": 32}))


# --- runs, resume, evaluation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attribute classifier the runs evaluate with, trained once for the module."""
    train_set = build_dataset("celeba_attributes", DATA, "train", 64)
    assert isinstance(train_set, CelebAAttributes)
    cache = tmp_path_factory.mktemp("classifier")
    cached_attribute_classifier(train_set.faces(), train_set.selected(ATTRIBUTES), cache)
    return cache


def test_a_run_resumed_inside_the_encoder_stage_repeats_the_uninterrupted_one(
    tmp_path: Path, classifier_cache: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    for run_dir in (straight, resumed):
        seed_evaluation_cache(classifier_cache, run_dir)
    config = _config()
    assert config.steps == 8
    result = train(config, straight, data_dir=DATA, device="cpu")
    # Interrupted after step 4 (inside stage 2, after the refresh), then continued.
    train(config.model_copy(update={"steps": 4}), resumed, data_dir=DATA, device="cpu")
    again = train(config, resumed, data_dir=DATA, device="cpu")
    assert (again.resumed_from, again.step) == (4, 8)

    a = checkpointing.load(straight / "checkpoints" / "step-000008.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000008.pt")
    for name in ("IcGAN", "D"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    served = build_network(result.generator_architecture, ny=5)
    served.load_state_dict(exported, strict=True)  # the serving module loads the run's file
    assert all(torch.equal(exported[k], a["networks"]["IcGAN"][k]) for k in exported)

    names = [n.lower() for n in ATTRIBUTES]
    assert set(result.metrics) == {
        "classifier_real_acc",
        "identity_cos_other_people",
        "val_target_attr_acc",
        "val_identity_cos",
        "val_rec_l1",
        "val_reconstruction_l1",
        "val_l1_other_faces",
        "val_encoder_y_acc",
        *(f"classifier_real_acc_{n}" for n in names),
        *(f"val_target_attr_acc_{n}" for n in names),
    }
    assert result.metrics == again.metrics
    assert result.metrics_at_init == again.metrics_at_init
    assert 0 < result.metrics["val_identity_cos"] <= 1
    assert 0 <= result.metrics["val_target_attr_acc"] <= 1
    assert 0 < result.metrics["val_reconstruction_l1"] < 2
    assert 0.3 < result.metrics["val_l1_other_faces"] < 1  # four different faces, [-1, 1]
    assert 0 <= result.metrics["val_encoder_y_acc"] <= 1
    # The stage of each logged step is in the metrics.
    with (straight / "metrics.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r.get("stage")]
    assert [(float(r["step"]), float(r["stage"])) for r in rows] == [
        (2, 1.0),
        (4, 2.0),
        (6, 2.0),
        (8, 3.0),
    ]


def test_samples_show_face_reconstruction_and_one_edit_per_attribute() -> None:
    recipe = _recipe(_config())
    editor = recipe.icgan.eval()
    rows = recipe.samples(editor)
    assert len(rows) == 4 and all(len(r) == 2 + len(ATTRIBUTES) for r in rows)
    assert all(t.shape == (3, 64, 64) for r in rows for t in r)
    faces = recipe._val_images[:4]
    assert torch.equal(rows[0][0], faces[0])
    with torch.no_grad():
        rebuilt = editor(faces, keep_own(4, 5))
    assert torch.allclose(rows[1][1], rebuilt[1])


def test_an_edit_that_changes_nothing_scores_zero_reconstruction() -> None:
    """The reconstruction figure is |G(E_z(x), E_y(x)) - x|: an editor returning x scores 0."""

    class _Copy(IcGAN):
        def forward(self, image: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
            return image

    recipe = _recipe(_config())
    icgan = recipe.icgan
    copy = _Copy(icgan.generator, icgan.encoder_z, icgan.encoder_y).eval()
    figures = recipe._inversion_figures(copy)
    assert figures["val_reconstruction_l1"] == 0
    assert figures["val_l1_other_faces"] > 0.3


# --- the config -----------------------------------------------------------------------------


def test_the_shipped_config_has_upstreams_settings_and_stages_summing_to_steps() -> None:
    config = load_train_config("icgan-celeba")
    assert isinstance(config, IcGANConfig) and CONFIG_TYPES.get("icgan") is IcGANConfig
    assert list(config.attributes) == ATTRIBUTES
    stages = config.stage_steps
    assert config.steps == stages.cgan + stages.encoder_z + stages.encoder_y
    assert min(stages.cgan, stages.encoder_z, stages.encoder_y) > 0
    assert (config.optim.lr, config.optim.beta1) == (2e-4, 0.5)
    assert (config.encoder_optim.lr, config.encoder_optim.beta1) == (1e-4, 0.1)
    assert (config.gan_loss, config.train_wrong_y, config.bn_refresh_batches) == (
        "nonsaturating",
        True,
        100,
    )
    assert (config.data.size, config.data.dataset, config.publish) == (
        64,
        "celeba_attributes",
        "icgan-celeba",
    )
    assert config.time_limit_s is None  # a time limit would cut the encoder stages off
    assert _config().steps == 8  # filled in from overridden stages
    with pytest.raises(InvalidInput, match="sum of stage_steps"):
        load_train_config("icgan-celeba", {**STAGES, "steps": 9})
    with pytest.raises(InvalidInput, match="listed twice"):
        load_train_config("icgan-celeba", {"attributes": ["Male", "Male"]})
    with pytest.raises(InvalidInput, match=r"stage_steps\.cgan"):
        load_train_config("icgan-celeba", {"stage_steps.cgan": -1})


def test_the_mse_of_ez_is_on_z() -> None:
    """Stage 2's loss is the mean squared error between E_z(G(z, y)) and the z drawn."""
    recipe = _recipe(_config(**{"stage_steps.cgan": 0, "bn_refresh_batches": 0}))
    batch = collate([recipe.train_dataset().sample(i) for i in (0, 1)])
    icgan = recipe.icgan
    before = _snapshot(icgan.encoder_z)
    torch.manual_seed(5)
    losses = recipe.train_step(batch, 0)
    icgan.encoder_z.load_state_dict(before)
    torch.manual_seed(5)
    z = torch.randn(2, 100)
    icgan.generator.eval()
    labels = batch["attributes"][:, recipe._columns]
    with torch.no_grad():
        expected = F.mse_loss(icgan.encoder_z.train()(icgan.generator(z, labels)), z)
    assert losses["e_z_mse"] == pytest.approx(float(expected), rel=1e-5)
