"""pix2pixHD's coarse-to-fine recipe on the loop: G1 alone, G2 with G1 fixed, then both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gantry.core.training import load_train_config
from tests.paths import DATA
from tests.training import SMALL_RUN
from trainer import checkpointing
from trainer.loop import train
from trainer.weights import trained


def _networks(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = checkpointing.load(checkpointing.latest(run_dir))  # type: ignore[arg-type]
    networks: dict[str, dict[str, torch.Tensor]] = state["networks"]
    return networks


def _trunk(generator: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in generator.items() if k.startswith("model.")}


def test_phases_hand_g1_to_the_local_enhancer_then_train_it(tmp_path: Path) -> None:
    # 12 steps: G1 alone for 4, G2 + E with G1 fixed for 4, all for 4 (checkpoints every 4).
    overrides = {**SMALL_RUN, "steps": 12, "global_share": 1 / 3, "fix_global_share": 1 / 3}
    config = load_train_config("pix2pixhd-facades-tiny", overrides)
    run = tmp_path / "run"
    train(config.model_copy(update={"steps": 4}), run, data_dir=DATA, device="cpu")
    after_global = _networks(run)
    result = train(config, run, data_dir=DATA, device="cpu")
    # Resumed at step 4 (the boundary); the copy happens at the first local step.
    assert result.resumed_from == 4
    states = {s: checkpointing.load(p)["networks"] for s, p in checkpointing.checkpoints(run)}
    assert sorted(states) == [8, 12]
    g1 = after_global["global"]
    fixed = _trunk(states[8]["generator"])
    # The LocalEnhancer's G1 is the trained G1 (without its head), untouched while fixed...
    assert all(torch.equal(v, g1[k]) for k, v in fixed.items())
    # ...and trained in the joint phase, like G2 and the encoder.
    joint = _trunk(states[12]["generator"])
    assert any(not torch.equal(joint[k], fixed[k]) for k in fixed)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_losses.values())
    assert result.last_losses["phase"] == 2
    assert set(result.metrics) == {"val_l1", "val_l1_zero_features", "val_l1_mean_photo"}
    assert result.metrics["val_l1"] < result.metrics_at_init["val_l1"]


def test_build_time_weights_are_trained_once_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gantry.core.settings import get_settings
    from trainer.catalog import card
    from trainer.weights import loader

    monkeypatch.setenv("GANTRY_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    small = load_train_config("pix2pixhd-facades-tiny", {**SMALL_RUN, "build_steps": 2})
    monkeypatch.setattr(trained, "load_train_config", lambda _name: small)
    try:
        model_card = card("pix2pixhd-facades-tiny")
        first = loader.load_weights(model_card)
        runs = list((tmp_path / "state" / "weights").iterdir())
        assert len(runs) == 1 and (runs[0] / "generator.pth").is_file()

        def no_training(*_: object, **__: object) -> None:
            raise AssertionError("trained again despite a cached run")

        import trainer.loop

        monkeypatch.setattr(trainer.loop, "train", no_training)
        again = loader.load_weights(model_card)
        assert all(torch.equal(first[k], again[k]) for k in first)
    finally:
        get_settings.cache_clear()
