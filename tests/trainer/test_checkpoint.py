"""The one checkpoint loader: wrappers, prefixes, stale InstanceNorm statistics, clear diffs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from trainer.archs import build_network
from trainer.weights.checkpoint import fit_strict, load_checkpoint, read_state_dict
from trainer.weights.errors import WeightImportError

ARCH = "realesr_animevideov3_x4"


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict", "model", None])
def test_wrappers_and_module_prefix_are_unwrapped(tmp_path: Path, wrapper: str | None) -> None:
    state = {f"module.{k}": v for k, v in build_network(ARCH).state_dict().items()}
    path = tmp_path / "net.pth"
    torch.save({wrapper: state, "optimizer": {"lr": 1}} if wrapper else state, path)
    loaded = load_checkpoint(path, ARCH)
    assert all(not k.startswith("module.") for k in loaded)
    assert loaded.keys() == build_network(ARCH).state_dict().keys()


def test_a_mismatch_lists_missing_unexpected_and_misshapen_keys(tmp_path: Path) -> None:
    state = build_network(ARCH).state_dict()
    state.pop("body.0.bias")
    state["extra.weight"] = torch.zeros(1)
    state["body.0.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightImportError) as error:
        load_checkpoint(path, ARCH)
    message = str(error.value)
    assert f"does not fit {ARCH}" in message
    assert "missing keys: body.0.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "body.0.weight (1, 1, 1, 1) vs (64, 3, 3, 3)" in message


def test_not_a_state_dict(tmp_path: Path) -> None:
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(WeightImportError, match="not a state_dict"):
        read_state_dict(tmp_path / "list.pth")


def test_pre_0_4_instance_norm_statistics_are_dropped() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4))
    state = dict(model.state_dict())
    state["1.running_mean"] = torch.zeros(4)  # what PyTorch 0.3 saved
    state["1.running_var"] = torch.ones(4)
    kept = fit_strict(model, state, source="old.pth", arch="test")
    assert set(kept) == {"0.weight", "0.bias"}
