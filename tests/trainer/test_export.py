"""The export stage: config.pbtxt from cards, and the ONNX parity gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from tests.paths import DATA
from trainer.archs import build_network
from trainer.catalog import CARDS, all_cards
from trainer.export.onnx import ParityError, check_parity, conv_gflops_per_pixel, export_onnx
from trainer.export.probes import probe_inputs
from trainer.export.triton_config import render_config


@pytest.mark.parametrize("name", CARDS.names())
def test_every_card_renders_a_cpu_and_a_gpu_config(name: str) -> None:
    card = CARDS.build(name)
    cpu = render_config(card)
    assert f'name: "{card.name}"' in cpu and 'backend: "onnxruntime"' in cpu
    assert f"max_batch_size: {card.max_batch_size}" in cpu and "KIND_CPU" in cpu
    assert "dynamic_batching" in cpu and "tensorrt" not in cpu
    gpu = render_config(card, profile="gpu")
    assert "KIND_GPU" in gpu and 'name : "tensorrt"' in gpu
    assert 'key: "precision_mode" value: "FP16"' in gpu
    plan = render_config(card, profile="gpu", model_format="tensorrt_plan")
    assert 'backend: "tensorrt"' in plan and "model.plan" in plan


def test_plans_need_the_gpu_profile() -> None:
    with pytest.raises(ValueError, match="gpu"):
        render_config(all_cards()[0], model_format="tensorrt_plan")


def test_one_default_model_per_task_for_the_gateway() -> None:
    defaults = [c.name for c in all_cards() if c.default]
    assert "realesrgan-x4plus" in defaults


class _Perturbed(nn.Module):
    """Behaves differently in PyTorch than in the exported graph (a traced constant)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x) + (0.01 if self.calls > 1 else 0.0)


def test_parity_gate_catches_a_graph_that_differs(tmp_path: Path) -> None:
    card = CARDS.build("realesr-animevideov3-x4")
    model = _Perturbed().eval()
    path = export_onnx(model, card, tmp_path / "m.onnx")
    image = [("noise", np.random.default_rng(0).random((3, 24, 24), np.float32))]
    with pytest.raises(ParityError, match="differs"):
        check_parity(model, path, card, image, tolerance=1e-3)
    report = check_parity(model, path, card, image, tolerance=0.1)
    assert 0.005 < report.max_abs_err < 0.02


def test_flop_count_of_a_single_conv() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
    assert conv_gflops_per_pixel(conv, (1, 3, 16, 16)) == pytest.approx(2 * 3 * 8 * 9 / 1e9)


def test_build_from_an_official_checkpoint(tmp_path: Path) -> None:
    """`gantry models build NAME --weights X.pth` serves a user's BasicSR-layout checkpoint."""
    from tests.paths import DATA
    from trainer.export.onnx import sha256_file
    from trainer.export.repository import BuildOptions, build_repository, load_model
    from trainer.weights.realesrgan import state_dict_from_ncnn

    name = "realesr-animevideov3-x4"
    card = CARDS.build(name)
    official = {"params_ema": state_dict_from_ncnn(card.architecture)}
    official["params_ema"]["body.0.bias"] = official["params_ema"]["body.0.bias"] + 0.5
    checkpoint = tmp_path / "realesr-animevideov3.pth"
    torch.save(official, checkpoint)
    options = BuildOptions(repository=tmp_path / "repo", data_dir=DATA, weights=checkpoint)
    (built,) = build_repository([name], options)
    assert built.build.weights_file == str(checkpoint)
    # The perturbed bias reached the served graph: it is not the packaged model's file.
    packaged = export_onnx(load_model(card), card, tmp_path / "packaged.onnx")
    assert sha256_file(packaged) != built.build.onnx_sha256
    assert built.build.parity_max_abs_err < 1e-3
    assert (tmp_path / "repo" / name / "config.pbtxt").exists()
    assert (tmp_path / "repo" / name / "1" / "card.json").exists()
    with pytest.raises(ValueError, match="exactly one model"):
        build_repository([], options)


FACE_MODEL_TASKS = ("face_edit", "style_translation")


@pytest.mark.parametrize("name", [c.name for c in all_cards() if c.task in FACE_MODEL_TASKS])
def test_a_card_of_several_inputs_exports_each_and_passes_the_parity_gate(
    name: str, tmp_path: Path
) -> None:
    """Face editors and style translators (freshly initialised: the gate checks the graph,
    not the weights) on the probes of their task, every input fed."""
    torch.manual_seed(0)
    card = CARDS.build(name)
    model = build_network(card.architecture, **card.arch_kwargs).eval()
    path = export_onnx(model, card, tmp_path / "model.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [t.name for t in card.inputs]
    probes = probe_inputs(card, DATA)
    assert len(probes) == 2
    report = check_parity(model, path, card, probes, tolerance=1e-4)
    assert report.max_abs_err < 1e-4
    # The TensorRT profile names every input with its shape.
    gpu = render_config(card, profile="gpu")
    for tensor in card.inputs:
        assert f"{tensor.name}:1x" in gpu
