"""ComboGAN: per-domain encoders and decoders composed per translation, CycleGAN's training."""

from __future__ import annotations

from pathlib import Path

import torch

from gantry.core.training import ComboGANConfig, load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.combogan import ComposedGenerator
from trainer.archs.cyclegan import cyclegan_resnet_tiny
from trainer.data import collate
from trainer.loop import train
from trainer.recipes import RECIPES

SMALL = {**SMALL_RUN, "pool_size": 3}


def _config(**overrides: object) -> ComboGANConfig:
    config = load_train_config("combogan-celeba-hair", {**SMALL, **overrides})
    assert isinstance(config, ComboGANConfig)
    return config


def test_the_halves_compose_to_a_cyclegan_generator() -> None:
    torch.manual_seed(0)
    encoder, decoder = (
        build_network("combogan_encoder_tiny"),
        build_network("combogan_decoder_tiny"),
    )
    composed = ComposedGenerator(encoder, decoder)
    reference = cyclegan_resnet_tiny()
    # The same layers in the same order: the composed pair takes a CycleGAN state_dict.
    ours = [tuple(v.shape) for v in composed.state_dict().values()]
    assert ours == [tuple(v.shape) for v in reference.state_dict().values()]
    composed.load_state_dict(
        dict(zip(composed.state_dict(), reference.state_dict().values(), strict=True))
    )
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    torch.testing.assert_close(composed.eval()(x), reference.eval()(x))
    latent = encoder(x)
    assert latent.shape == (2, 64, 16, 12)  # 4·ngf at a quarter of the size


def test_translations_share_no_network_and_every_half_trains() -> None:
    config = _config()
    torch.manual_seed(config.seed)
    recipe = RECIPES.get("combogan")(config, data_dir=DATA, device=torch.device("cpu"))
    recipe.build()
    g_a, g_b = recipe.networks["G_A"], recipe.networks["G_B"]
    assert isinstance(g_a, ComposedGenerator) and isinstance(g_b, ComposedGenerator)
    # A → B is decoder_B(encoder_A); B → A is decoder_A(encoder_B): four distinct halves.
    halves = {id(g_a.encoder), id(g_a.decoder), id(g_b.encoder), id(g_b.decoder)}
    assert len(halves) == 4
    before = {
        k: {n: p.clone() for n, p in v.named_parameters()} for k, v in recipe.networks.items()
    }
    dataset = recipe.train_dataset()
    for step in range(2):
        losses = recipe.train_step(
            collate([dataset.sample(i) for i in (2 * step, 2 * step + 1)]), step
        )
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, network in recipe.networks.items():
        changed = [n for n, p in network.named_parameters() if not torch.equal(p, before[name][n])]
        assert len(changed) == len(before[name]), name


def test_a_run_evaluates_and_resumes_exactly(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    config = _config(steps=4, checkpoint_every=2, **{"data.val_images": 8})
    result = train(config, straight, data_dir=DATA, device="cpu")
    train(config.model_copy(update={"steps": 2}), resumed, data_dir=DATA, device="cpu")
    again = train(config, resumed, data_dir=DATA, device="cpu")
    assert again.resumed_from == 2
    a = checkpointing.load(checkpointing.latest(straight))["networks"]  # type: ignore[arg-type]
    b = checkpointing.load(checkpointing.latest(resumed))["networks"]  # type: ignore[arg-type]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    assert {"val_domain_acc_a2b", "val_identity_cos_a2b"} <= set(result.metrics)
    assert result.generator_architecture == "combogan_encoder_tiny+combogan_decoder_tiny"
