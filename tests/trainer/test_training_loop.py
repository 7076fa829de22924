"""The training loop on the pix2pix recipe: a few real steps on CMP facades, on CPU."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, get_args

import pytest
import torch
from PIL import Image

from gantry.core.training import load_train_config
from gantry.core.training.schema import GanLossName
from tests.paths import DATA
from tests.training import SMALL_RUN, train_under_torchrun
from trainer import checkpointing
from trainer.loop import GENERATOR_FILE, RESULT_FILE, StepReport, train
from trainer.losses import GAN_LOSSES

SMALL = SMALL_RUN


def _config(**overrides: Any):  # type: ignore[no-untyped-def]
    return load_train_config("pix2pix-facades", {**SMALL, **overrides})


def _generator(run_dir: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(run_dir / GENERATOR_FILE, weights_only=True)
    return state


def test_the_schema_names_every_registered_gan_loss() -> None:
    assert sorted(get_args(GanLossName)) == GAN_LOSSES.names()


def test_a_few_steps_change_the_weights_and_leave_every_artifact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    from trainer.archs import build_network

    initial = build_network("pix2pix_unet_tiny").state_dict()  # the loop seeds the same way
    result = train(_config(steps=8), tmp_path, data_dir=DATA, device="cpu")

    assert (result.step, result.stopped, result.resumed_from) == (8, "steps", None)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.last_losses.values())
    assert set(result.last_losses) == {"d", "g_gan", "g_l1"}
    trained = _generator(tmp_path)
    changed = [
        k
        for k in initial
        if initial[k].is_floating_point() and not torch.equal(initial[k], trained[k])
    ]
    assert len(changed) > 0.9 * sum(v.is_floating_point() for v in initial.values())
    assert set(result.metrics) == {"val_l1", "val_l1_mean_photo"}
    assert 0 < result.metrics["val_l1"] < 1

    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["step"]) for r in rows if r["g_l1"]] == [2, 4, 6, 8]
    grid = Image.open(tmp_path / result.artifacts["samples"])
    assert grid.size == (3 * 66 + 2, 4 * 66 + 2)  # input | output | target, four rows
    assert Image.open(tmp_path / "curves.png").size[0] > 300
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("g_l1")] == [2, 4, 6, 8]
    assert events.Tags()["images"] == ["samples"]
    assert [s for s, _ in checkpointing.checkpoints(tmp_path)] == [4, 8]  # keep 2
    assert json.loads((tmp_path / RESULT_FILE).read_text())["step"] == 8


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(_config(steps=8), straight, data_dir=DATA, device="cpu")
    train(_config(steps=4), resumed, data_dir=DATA, device="cpu")
    result = train(_config(steps=8), resumed, data_dir=DATA, device="cpu")

    assert result.resumed_from == 4
    a, b = _generator(straight), _generator(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with (resumed / "metrics.csv").open() as f:
        steps = [float(r["step"]) for r in csv.DictReader(f) if r["g_l1"]]
    assert steps == [2, 4, 6, 8]  # one row a logged step, none twice


def test_a_run_stopped_mid_way_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    class StopError(Exception):
        pass

    def stop_at_6(report: StepReport) -> None:
        if report.step == 6:
            raise StopError

    with pytest.raises(StopError):
        train(_config(steps=8), tmp_path, data_dir=DATA, device="cpu", on_step=stop_at_6)
    assert checkpointing.latest(tmp_path) == tmp_path / "checkpoints" / "step-000004.pt"
    result = train(_config(steps=8), tmp_path, data_dir=DATA, device="cpu")
    assert (result.resumed_from, result.step) == (4, 8)


def test_learning_rates_decay_linearly_over_the_second_half() -> None:
    optim = _config(**{"optim.decay_start": 0.5}).optim
    assert [optim.lr_factor(s, 8) for s in (0, 4, 5, 7)] == [1.0, 1.0, 0.75, 0.25]
    assert _config().optim.lr_factor(7, 8) == 1.0  # the shipped config keeps a constant rate


def test_a_decaying_run_resumed_mid_way_follows_the_same_schedule(tmp_path: Path) -> None:
    class StopError(Exception):
        pass

    def stop_at_6(report: StepReport) -> None:
        if report.step == 6:
            raise StopError

    config = _config(steps=8, **{"optim.decay_start": 0.5})
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(config, straight, data_dir=DATA, device="cpu")
    with pytest.raises(StopError):
        train(config, resumed, data_dir=DATA, device="cpu", on_step=stop_at_6)
    assert train(config, resumed, data_dir=DATA, device="cpu").resumed_from == 4
    a, b = _generator(straight), _generator(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    last = checkpointing.load(straight / "checkpoints" / "step-000008.pt")
    for state in last["optimizers"].values():
        # The last step (7) ran at a quarter of the initial rate.
        assert [g["lr"] for g in state["param_groups"]] == [pytest.approx(2e-4 * 0.25)]


def test_the_time_limit_stops_with_a_checkpoint(tmp_path: Path) -> None:
    result = train(_config(steps=1000, time_limit_s=0.01), tmp_path, data_dir=DATA, device="cpu")
    assert result.stopped == "time_limit"
    assert result.step < 1000
    assert checkpointing.latest(tmp_path) is not None


def test_ema_weights_are_what_the_run_exports(tmp_path: Path) -> None:
    result = train(_config(steps=4, ema_decay=0.5), tmp_path, data_dir=DATA, device="cpu")
    state = checkpointing.load(checkpointing.latest(tmp_path))  # type: ignore[arg-type]
    live, ema = state["networks"]["generator"], state["ema"]
    exported = _generator(tmp_path)
    key = "model.model.0.weight"
    assert torch.equal(exported[key], ema[key])
    assert not torch.equal(ema[key], live[key])
    assert result.step == 4


def test_two_process_ddp_under_torchrun(tmp_path: Path) -> None:
    """`gantry train --nproc 2`: torchrun, gloo, DistributedDataParallel; rank 0 writes."""
    result, stdout = train_under_torchrun("pix2pix-facades", {**SMALL, "steps": 4}, tmp_path)
    assert (result["world_size"], result["step"]) == (2, 4)
    assert "stopped at step 4" in stdout
