"""Progressive GAN: the equalised learning rate, pixel norm, minibatch standard deviation,
the fade-in of each new block in G and D, the growth schedule, the recipe's steps across a
growth boundary, exact resume across it, the evaluation and the served generator's export."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from gantry.core.errors import InvalidInput
from gantry.core.latents import seeded_latents
from gantry.core.training import ProGANConfig, load_train_config
from tests.paths import DATA
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    ProGANDiscriminator,
    ProGANGenerator,
    he_constant,
    minibatch_stddev,
    pixel_norm,
    progan_paper_generator,
)
from trainer.catalog import card
from trainer.data import build_dataset, collate
from trainer.export.onnx import check_parity, conv_gflops_per_pixel, export_onnx, probe_shapes
from trainer.export.probes import probe_inputs
from trainer.loop import GENERATOR_FILE, train
from trainer.recipes import RECIPES
from trainer.recipes.progan import ProGANRecipe, at_stage

# Four stages (4 → 32 px) of one fade-in and one stable step each: stage starts 0, 1, 3, 5;
# the 32 px block has faded in at step 6. Batch 4, 8 held-aside faces.
SMALL: dict[str, Any] = {
    "schedule.fade_in": 1,
    "schedule.stable": 1,
    "steps": 8,
    "batch_size": 4,
    "data.val_images": 8,
    "log_every": 1,
    "checkpoint_every": 4,
    "sample_every": 4,
    "eval_every": 0,
    "time_limit_s": None,
}


def _config(**overrides: Any) -> ProGANConfig:
    config = load_train_config("progan-celeba", {**SMALL, **overrides})
    assert isinstance(config, ProGANConfig)
    return config


def _recipe(config: ProGANConfig) -> ProGANRecipe:
    torch.manual_seed(0)
    recipe = RECIPES.get("progan")(config, data_dir=DATA, device=torch.device("cpu"))
    assert isinstance(recipe, ProGANRecipe)
    recipe.build()
    return recipe


# --- the layers ------------------------------------------------------------------------------


def test_equalised_weights_are_stored_standard_normal_and_scaled_by_hes_constant() -> None:
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 128, 3)
    dense = EqualizedLinear(512, 256, gain=1.0)
    for layer, fan_in, gain in ((conv, 64 * 9, math.sqrt(2)), (dense, 512, 1.0)):
        w = layer.weight.detach()
        assert abs(float(w.mean())) < 0.01 and abs(float(w.std()) - 1.0) < 0.01
        assert layer.scale == pytest.approx(gain / math.sqrt(fan_in))
        assert layer.scale == he_constant(fan_in, gain)
        assert float(layer.state_dict()["bias"].abs().max()) == 0.0
        # The scale is applied at run time, not stored: it is no parameter or buffer.
        assert set(layer.state_dict()) == {"weight", "bias"}
    x = torch.randn(2, 64, 8, 8)
    expected = F.conv2d(x, conv.weight * math.sqrt(2) / math.sqrt(64 * 9), conv.bias, padding=1)
    assert torch.allclose(conv(x), expected, atol=1e-5)
    v = torch.randn(3, 512)
    assert torch.allclose(dense(v), v @ (dense.weight / math.sqrt(512)).T + dense.bias, atol=1e-5)


def test_the_equalised_learning_rate_gives_every_layer_the_same_adam_step() -> None:
    """Adam's first step moves every stored weight by about lr whatever its fan-in: in
    weight space the step is lr · scale, so narrow and wide layers learn at one speed."""
    torch.manual_seed(0)
    narrow, wide = EqualizedConv2d(4, 4, 3), EqualizedConv2d(256, 4, 3)
    optimizer = torch.optim.Adam([*narrow.parameters(), *wide.parameters()], lr=1e-3)
    before = narrow.weight.detach().clone(), wide.weight.detach().clone()
    loss = narrow(torch.randn(2, 4, 8, 8)).sum() + wide(torch.randn(2, 256, 8, 8)).sum()
    loss.backward()
    optimizer.step()
    for layer, old in zip((narrow, wide), before, strict=True):
        step = (layer.weight.detach() - old).abs()
        assert float(step.mean()) == pytest.approx(1e-3, rel=0.05)


def test_pixel_norm_makes_each_pixels_features_unit_mean_square() -> None:
    x = torch.randn(2, 16, 5, 5) * 7 + 3
    y = pixel_norm(x)
    assert torch.allclose(y.pow(2).mean(dim=1), torch.ones(2, 5, 5), atol=1e-5)
    # Direction kept: a positive rescale of each pixel's vector.
    assert torch.allclose(y * x.pow(2).mean(dim=1, keepdim=True).sqrt(), x, atol=1e-4)


def test_minibatch_stddev_appends_one_map_of_each_groups_mean_deviation() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 5, 4, 4)
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (8, 6, 4, 4)
    assert torch.equal(y[:, :5], x)
    # Groups of 4 take samples i, i + 2, i + 4, i + 6 (tkarras' reshape): two groups.
    for member in range(2):
        group = x[member::2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        values = y[member::2, 5]
        assert torch.allclose(values, expected.expand_as(values), atol=1e-6)
    # A batch that groups of four do not divide is one group.
    odd = minibatch_stddev(torch.randn(3, 5, 4, 4))
    assert odd.shape == (3, 6, 4, 4) and torch.equal(odd[:, 5], odd[:1, 5].expand(3, 4, 4))


# --- growing -------------------------------------------------------------------------------


def test_the_tiny_networks_grow_from_4_to_32_pixels() -> None:
    g, d = build_network("progan_tiny"), build_network("progan_tiny_discriminator")
    assert isinstance(g, ProGANGenerator) and isinstance(d, ProGANDiscriminator)
    assert (g.resolution, g.stages, g.latent_dim) == (32, 4, 128)
    z = torch.randn(4, 128)
    for stage, side in enumerate((4, 8, 16, 32)):
        image = g(z, stage, 0.5 if stage else 1.0)
        assert image.shape == (4, 3, side, side)
        assert d(image, stage, 0.5).shape == (4, 1)
    assert g(z).shape == (4, 3, 32, 32)  # the defaults: the final stage, faded in
    with pytest.raises(ValueError, match="16x16"):
        d(torch.zeros(4, 3, 32, 32), 2)
    with pytest.raises(ValueError, match="stage 4"):
        g(z, 4)
    paper = progan_paper_generator(1024)
    widths = [
        p.shape[1]
        for n, p in paper.named_parameters()
        if n.startswith("to_rgb.") and n.endswith(".weight")
    ]
    assert widths == [512] * 4 + [256, 128, 64, 32, 16]


def test_a_new_block_fades_in_from_the_previous_resolution() -> None:
    """At alpha 0 G's image is the previous stage's image upsampled and D scores the image
    as the previous stage scores it downsampled; at alpha 1 the new block alone."""
    torch.manual_seed(0)
    g, d = build_network("progan_tiny"), build_network("progan_tiny_discriminator")
    z = torch.randn(4, 128)
    with torch.no_grad():
        for stage in (1, 2, 3):
            previous = F.interpolate(g(z, stage - 1), scale_factor=2.0)
            assert torch.allclose(g(z, stage, 0.0), previous, atol=1e-6)
            half = torch.lerp(previous, g(z, stage, 1.0), 0.5)
            assert torch.allclose(g(z, stage, 0.5), half, atol=1e-5)
            image = torch.randn(4, 3, 4 * 2**stage, 4 * 2**stage)
            coarse = d(F.avg_pool2d(image, 2), stage - 1)
            assert torch.allclose(d(image, stage, 0.0), coarse, atol=1e-5)
            assert not torch.allclose(d(image, stage, 1.0), coarse, atol=1e-3)


def test_real_faces_are_shown_at_the_stages_resolution_blended_as_g_is() -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(at_stage(images, 3, 1.0, 4), images)
    sixteen = at_stage(images, 2, 1.0, 4)
    assert torch.allclose(sixteen, F.avg_pool2d(images, 2), atol=1e-6)
    eight = F.avg_pool2d(images, 4)
    blended = at_stage(images, 2, 0.0, 4)
    assert torch.allclose(blended, F.interpolate(eight, scale_factor=2.0), atol=1e-6)
    assert at_stage(images, 0, 1.0, 4).shape == (2, 3, 4, 4)


# --- the schedule ------------------------------------------------------------------------


def test_the_schedule_derives_stage_and_alpha_from_the_step() -> None:
    config = load_train_config("progan-celeba")
    assert isinstance(config, ProGANConfig)
    fade, stable = config.schedule.fade_in, config.schedule.stable
    assert config.stages == 4
    assert config.stage_at(0) == (0, 1.0) and config.stage_at(stable - 1) == (0, 1.0)
    assert config.stage_at(stable) == (1, 0.0)  # the 8 px block starts fading in
    assert config.stage_at(stable + fade // 2) == (1, 0.5)
    assert config.stage_at(stable + fade) == (1, 1.0)
    assert config.stage_start(3) == stable + 2 * (fade + stable)
    assert config.stage_at(config.steps - 1) == (3, 1.0)
    alphas = [config.stage_at(s)[1] for s in range(config.stage_start(2), config.stage_end(2))]
    assert alphas[0] == 0.0 and alphas[-1] == 1.0 and alphas == sorted(alphas)


def test_the_shipped_config_has_tkarras_defaults_and_a_build_that_still_grows() -> None:
    config = load_train_config("progan-celeba")
    assert isinstance(config, ProGANConfig)
    assert (config.optim.lr, config.optim.beta1, config.optim.beta2) == (1e-3, 0.0, 0.99)
    assert (config.lambda_gp, config.eps_drift) == (10.0, 0.001)
    assert config.reset_optimizers_per_stage and config.publish == "progan-celeba"
    assert (config.data.dataset, config.data.size) == ("celeba_attributes", 32)
    build = config.for_build()
    assert isinstance(build, ProGANConfig)
    assert build.steps < config.steps and build.time_limit_s is None
    assert build.stage_at(build.steps - 1) == (3, 1.0)
    with pytest.raises(InvalidInput, match="faded in"):
        load_train_config("progan-celeba", {"steps": config.stage_start(3)})
    with pytest.raises(InvalidInput, match="power of two"):
        load_train_config("progan-celeba", {"data.size": 48})


# --- steps, growth and resume --------------------------------------------------------------


def test_steps_across_growth_boundaries_fade_in_and_update_only_the_reached_blocks() -> None:
    config = _config()
    recipe = _recipe(config)
    g, d = recipe.networks["generator"], recipe.networks["discriminator"]
    assert isinstance(g, ProGANGenerator)
    data = build_dataset("celeba_attributes", DATA, "train", 32)
    start = {k: v.detach().clone() for k, v in g.state_dict().items()}
    d_start = {k: v.detach().clone() for k, v in d.state_dict().items()}
    seen = []
    for step in range(5):  # stage 0, then the 8 and 16 px stages' fade-in and stable steps
        torch.manual_seed(step)
        batch = collate([data.sample(i) for i in range(step * 4, step * 4 + 4)])
        losses = recipe.train_step(batch, step)
        assert all(math.isfinite(v) for v in losses.values()), losses
        seen.append((losses["stage"], losses["alpha"]))
    assert seen == [(0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (2.0, 0.0), (2.0, 1.0)]
    after = g.state_dict()
    moved = {k for k in start if not torch.equal(start[k], after[k])}
    # Everything up to 16 px took part; nothing of the 32 px stage did.
    assert {"blocks.0.dense.weight", "blocks.1.conv0.weight", "to_rgb.0.weight"} <= moved
    assert "blocks.2.conv1.weight" in moved and "to_rgb.1.weight" in moved
    assert not any(k.startswith(("blocks.3.", "to_rgb.3.")) for k in moved)
    d_moved = {k for k, v in d.state_dict().items() if not torch.equal(d_start[k], v)}
    assert "blocks.0.dense1.weight" in d_moved and "from_rgb.1.weight" in d_moved
    assert not any(k.startswith(("blocks.3.", "from_rgb.3.")) for k in d_moved)


def test_adams_moments_are_cleared_when_a_new_resolution_starts() -> None:
    recipe = _recipe(_config())
    data = build_dataset("celeba_attributes", DATA, "train", 32)
    batch = collate([data.sample(i) for i in range(4)])
    optimizer = recipe.optimizers["generator"]
    parameters = dict(recipe.networks["generator"].named_parameters())
    dense = parameters["blocks.0.dense.weight"]
    counts = []
    for step in range(3):  # the first step of stage 1 (step 1) clears, then steps
        recipe.train_step(batch, step)
        counts.append(int(optimizer.state[dense]["step"]))
    assert counts == [1, 1, 2]
    assert "step" not in optimizer.state.get(parameters["to_rgb.2.weight"], {})


def test_a_run_resumed_across_a_growth_boundary_repeats_the_uninterrupted_one(
    tmp_path: Path,
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(_config(), straight, data_dir=DATA, device="cpu")
    # Stopped at step 4 (inside the 16 px stage), resumed across the 32 px boundary (5).
    train(_config(steps=6, checkpoint_every=4), resumed, data_dir=DATA, device="cpu")
    checkpoints = resumed / "checkpoints"
    (checkpoints / "step-000006.pt").unlink()
    again = train(_config(), resumed, data_dir=DATA, device="cpu")

    assert (again.resumed_from, again.step) == (4, 8)
    a = checkpointing.load(straight / "checkpoints" / "step-000008.pt")
    b = checkpointing.load(checkpoints / "step-000008.pt")
    for name in ("generator", "discriminator"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    assert a["recipe_state"] == b["recipe_state"] == {"steps_done": 8}
    # Adam restarted at the 32 px stage (step 5): three steps since.
    assert int(a["optimizers"]["generator"]["state"][0]["step"]) == 3  # blocks.0.dense
    assert result.metrics == again.metrics and result.metrics_at_init == again.metrics_at_init
    assert set(result.last_losses) == {"d_adv", "d_gp", "d_drift", "g_adv", "stage", "alpha"}
    assert all(math.isfinite(v) for v in result.last_losses.values())
    assert (result.last_losses["stage"], result.last_losses["alpha"]) == (3.0, 1.0)
    figures = result.metrics
    assert set(figures) == {"val_d_gap", "val_d_gap_real", "val_resolution", "val_alpha"}
    assert (figures["val_resolution"], figures["val_alpha"]) == (32.0, 1.0)
    assert result.metrics_at_init["val_resolution"] == 4.0
    assert all(math.isfinite(v) for v in figures.values())
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    assert exported.keys() == a["networks"]["generator"].keys()
    assert result.generator_architecture == "progan_tiny"
    assert (straight / "samples" / "step-000004.png").is_file()


def test_samples_show_the_current_stage_at_the_final_size() -> None:
    recipe = _recipe(_config())
    recipe.steps_done = 3  # the last trained step (2) is the 8 px stage, faded in
    rows = recipe.samples(recipe.networks["generator"])
    assert len(rows) == 4 and all(len(row) == 8 for row in rows)
    face = rows[0][0]
    assert face.shape == (3, 32, 32)
    # Blown up from 8 px: blocks of 4x4 equal pixels.
    assert torch.equal(face, F.interpolate(face[None, :, ::4, ::4], scale_factor=4.0)[0])


def test_a_generator_of_another_size_than_the_data_is_refused() -> None:
    with pytest.raises(ValueError, match=r"data\.size is 64"):
        _recipe(_config(**{"data.size": 64}))


# --- served -----------------------------------------------------------------------------


def test_the_final_generator_exports_latent_in_image_out_and_passes_the_parity_gate(
    tmp_path: Path,
) -> None:
    torch.manual_seed(1)
    model_card = card("progan-celeba")
    assert model_card.task == "generation" and model_card.weights.research_only
    spec = model_card.spec
    assert (spec.latent_dim, spec.resolution) == (128, 32)  # type: ignore[union-attr]
    g = build_network(model_card.architecture, **model_card.arch_kwargs).eval()
    path = export_onnx(g, model_card, tmp_path / "model.onnx")
    probes = probe_inputs(model_card, DATA)
    assert [label for label, _ in probes] == ["seed 0", "seed 1"]
    assert np.array_equal(probes[0][1], seeded_latents(128, 0)[0])
    report = check_parity(g, path, model_card, probes, tolerance=1e-4)
    assert report.max_abs_err < 1e-4
    # The build record counts the equalised convs' work (per latent element, its only input).
    assert conv_gflops_per_pixel(g, *probe_shapes(model_card)) > 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    z = seeded_latents(128, 5, count=3)
    (image,) = session.run(None, {"z": z})
    with torch.no_grad():
        expected = g(torch.from_numpy(z)).numpy()
    assert image.shape == (3, 3, 32, 32)
    assert float(np.abs(image - expected).max()) < 1e-4
