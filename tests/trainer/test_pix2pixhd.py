"""pix2pixHD: NVIDIA's key layout, instance pooling, ONNX parity and a short training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from numpy.typing import NDArray
from PIL import Image

from gantry.core.cards import ModelCard, SynthesisSpec, TensorSpec, WeightsSpec
from gantry.core.labelmaps import CMP_FACADE_CLASSES, cmp_facade_classes, generator_input
from tests.paths import DATA
from trainer.archs import build_network
from trainer.archs.pix2pixhd import (
    FACADES_FEAT_NUM,
    FACADES_INPUT_NC,
    FACADES_N_CLASSES,
    Encoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    instance_average,
)
from trainer.export.onnx import check_parity, export_onnx
from trainer.weights.checkpoint import load_checkpoint
from trainer.weights.errors import WeightImportError

FACADES = DATA / "train" / "cmp_facades"
needs_facades = pytest.mark.skipif(not FACADES.is_dir(), reason=f"{FACADES} missing")


def _params(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _convs(prefix: str, positions: list[int]) -> set[str]:
    return {f"{prefix}.{i}.{p}" for i in positions for p in ("weight", "bias")}


def _blocks(prefix: str, positions: list[int]) -> set[str]:
    return {
        f"{prefix}.{i}.conv_block.{c}.{p}"
        for i in positions
        for c in (1, 5)
        for p in ("weight", "bias")
    }


# --- key layout ---------------------------------------------------------------------------
# Positions written out by hand from NVIDIA/pix2pixHD models/networks.py: every stage is
# (conv, norm, ReLU), the stem and head add a ReflectionPad2d(3) first, and
# InstanceNorm(affine=False) holds no parameters but takes a slot.


def test_global_generator_keys_match_nvidia_class_defaults() -> None:
    # GlobalGenerator(input_nc, output_nc) with ngf=64, n_downsampling=3, n_blocks=9:
    # pad 0, conv 1, downs 4/7/10, blocks 13..21, transposed 22/25/28, pad 31, conv 32, tanh 33.
    with torch.device("meta"):
        g = GlobalGenerator(36, 3)
    assert len(g.model) == 34
    expected = _convs("model", [1, 4, 7, 10, 22, 25, 28, 32]) | _blocks("model", [*range(13, 22)])
    shapes = _params(g)
    assert set(shapes) == expected
    assert shapes["model.1.weight"] == (64, 36, 7, 7)
    assert shapes["model.10.weight"] == (512, 256, 3, 3)
    assert shapes["model.13.conv_block.1.weight"] == (512, 512, 3, 3)
    assert shapes["model.22.weight"] == (512, 256, 3, 3)  # ConvTranspose: (in, out, k, k)
    assert shapes["model.32.weight"] == (3, 64, 7, 7)


def test_local_enhancer_keys_match_label2city_1024p() -> None:
    # --netG local --ngf 32, command-line n_downsample_global 4: G1 at ngf 64 without its head.
    with torch.device("meta"):
        g = build_network("pix2pixhd_local")
    assert isinstance(g, LocalEnhancer)
    expected = (
        _convs("model", [1, 4, 7, 10, 13, 25, 28, 31, 34])
        | _blocks("model", [*range(16, 25)])
        | _convs("model1_1", [1, 4])
        | _blocks("model1_2", [0, 1, 2])
        | _convs("model1_2", [3, 7])
    )
    shapes = _params(g)
    assert set(shapes) == expected
    assert len(g.model) == 37  # 40 entries of G1 minus pad, conv, tanh
    assert shapes["model.1.weight"] == (64, 36, 7, 7)
    assert shapes["model.16.conv_block.5.weight"] == (1024, 1024, 3, 3)
    assert shapes["model.34.weight"] == (128, 64, 3, 3)
    assert shapes["model1_1.1.weight"] == (32, 36, 7, 7)
    assert shapes["model1_1.4.weight"] == (64, 32, 3, 3)
    assert shapes["model1_2.0.conv_block.1.weight"] == (64, 64, 3, 3)
    assert shapes["model1_2.3.weight"] == (64, 32, 3, 3)
    assert shapes["model1_2.7.weight"] == (3, 32, 7, 7)
    # ~182.9 M parameters: the ~730 MB fp32 latest_net_G.pth NVIDIA distributes.
    assert 182_000_000 < sum(v.numel() for v in g.parameters()) < 184_000_000


def test_discriminator_keys_in_both_nvidia_layouts() -> None:
    # Training layout (feature matching on): scale{i}_layer{j}, conv at .0.
    d = build_network("pix2pixhd_discriminator")
    shapes = _params(d)
    assert set(shapes) == {
        f"scale{i}_layer{j}.0.{p}" for i in range(2) for j in range(5) for p in ("weight", "bias")
    }
    assert shapes["scale0_layer0.0.weight"] == (64, 39, 4, 4)
    assert shapes["scale1_layer3.0.weight"] == (512, 256, 4, 4)
    assert shapes["scale1_layer4.0.weight"] == (1, 512, 4, 4)
    # Without intermediate features: layer{i}, convs at 0, 2, 5, 8, 11 of one Sequential.
    flat = MultiscaleDiscriminator(6, num_D=3, get_interm_feat=False)
    assert set(_params(flat)) == set().union(
        *(_convs(f"layer{i}", [0, 2, 5, 8, 11]) for i in range(3))
    )


def test_encoder_keys_match_nvidia_defaults() -> None:
    e = build_network("pix2pixhd_encoder")
    shapes = _params(e)
    assert set(shapes) == _convs("model", [1, 4, 7, 10, 13, 16, 19, 22, 25, 29])
    assert shapes["model.1.weight"] == (16, 3, 7, 7)
    assert shapes["model.29.weight"] == (3, 16, 7, 7)


# --- forward ------------------------------------------------------------------------------


def test_tiny_generator_shapes_range_and_size_rule() -> None:
    torch.manual_seed(0)
    g = build_network("pix2pixhd_facades_tiny").eval()
    assert isinstance(g, LocalEnhancer) and (g.size_multiple, g.min_size) == (8, 16)
    with torch.no_grad():
        out = g(torch.randn(2, FACADES_INPUT_NC, 16, 40))
    assert out.shape == (2, 3, 16, 40) and out.abs().max() <= 1
    with pytest.raises(ValueError, match="multiples of 8"):
        g(torch.zeros(1, FACADES_INPUT_NC, 20, 16))
    with pytest.raises(ValueError, match="at least 16"):
        g(torch.zeros(1, FACADES_INPUT_NC, 8, 16))


def test_local_enhancer_adds_g2_front_end_to_g1_features() -> None:
    torch.manual_seed(0)
    g = build_network("pix2pixhd_facades_tiny").eval()
    x = torch.randn(1, FACADES_INPUT_NC, 32, 48)
    with torch.no_grad():
        half = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        g1, front, back = (g.get_submodule(n) for n in ("model", "model1_1", "model1_2"))
        expected = back(front(x) + g1(half))
        assert torch.allclose(g(x), expected)


def test_discriminator_scales_and_order() -> None:
    torch.manual_seed(0)
    d = build_network("pix2pixhd_facades_tiny_discriminator")
    x = torch.randn(1, FACADES_N_CLASSES + 1 + 3, 64, 64)
    out = d(x)
    assert [len(scale) for scale in out] == [5, 5]
    # 64 px: three 4x4 stride-2 convs with padding 2 give 33, 17, 9; two stride-1 ones 10, 11.
    assert [tuple(scale[-1].shape) for scale in out] == [(1, 1, 11, 11), (1, 1, 7, 7)]
    # The full-resolution input is scored by the highest-numbered scale (upstream's order).
    with torch.no_grad():
        first = d.get_submodule("scale1_layer0")(x)
    assert torch.equal(out[0][0], first)


def _brute_force_pool(features: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """pix2pixHD's loop: per instance id, per image, per channel, the mean over its pixels."""
    out = features.clone()
    for i in torch.unique(inst).tolist():
        for b in range(features.shape[0]):
            mask = inst[b, 0] == i
            if mask.any():
                for c in range(features.shape[1]):
                    out[b, c][mask] = features[b, c][mask].mean()
    return out


def test_instance_average_matches_a_loop_over_ids() -> None:
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(3, 4, 8, 10, generator=gen)
    # Sparse Cityscapes-like ids; id 26001 only occurs in image 1, id 0 in all.
    inst = torch.randint(0, 3, (3, 1, 8, 10), generator=gen) * 7
    inst[1, 0, 2:5, 3:6] = 26001
    assert torch.allclose(instance_average(features, inst), _brute_force_pool(features, inst))
    assert torch.allclose(
        instance_average(features, inst.float()[:, 0]), _brute_force_pool(features, inst)
    )


def test_encoder_output_is_constant_per_instance_and_trainable() -> None:
    torch.manual_seed(0)
    e = build_network("pix2pixhd_facades_tiny_encoder")
    assert isinstance(e, Encoder)
    image = torch.randn(2, 3, 16, 24)
    inst = torch.zeros(2, 1, 16, 24, dtype=torch.long)
    inst[:, :, 4:12, 8:20] = 5
    pooled = e(image, inst)
    assert pooled.shape == (2, FACADES_FEAT_NUM, 16, 24)
    for b in range(2):
        for i in (0, 5):
            values = pooled[b][:, inst[b, 0] == i]
            assert torch.allclose(values, values[:, :1].expand_as(values))
    pooled.sum().backward()
    grad = e.get_parameter("model.1.weight").grad
    assert grad is not None and grad.abs().sum() > 0


# --- official checkpoints -----------------------------------------------------------------


def test_official_checkpoint_loads_with_old_instance_norm_stats(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = build_network("pix2pixhd_facades_tiny").state_dict()
    # What a PyTorch-0.3 DataParallel save looks like: prefixed keys and InstanceNorm stats.
    raw = {f"module.{k}": v for k, v in state.items()}
    raw["module.model.2.running_mean"] = torch.zeros(16)
    raw["module.model1_2.0.conv_block.2.running_var"] = torch.ones(16)
    path = tmp_path / "latest_net_G.pth"
    torch.save(raw, path)
    loaded = load_checkpoint(path, "pix2pixhd_facades_tiny")
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_official_checkpoint_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "latest_net_G.pth"
    torch.save(build_network("pix2pixhd_facades_tiny").state_dict(), path)
    with pytest.raises(WeightImportError, match="does not fit"):
        load_checkpoint(path, "pix2pixhd_facades_tiny_encoder")
    # A checkpoint trained with other options loads once they are passed through.
    with torch.device("meta"):
        small = build_network("pix2pixhd_local", input_nc=5, ngf=4, n_downsample_global=1)
    torch.save({k: torch.zeros(v.shape) for k, v in small.state_dict().items()}, path)
    load_checkpoint(path, "pix2pixhd_local", input_nc=5, ngf=4, n_downsample_global=1)
    with pytest.raises(WeightImportError):
        load_checkpoint(path, "pix2pixhd_local")


# --- ONNX ---------------------------------------------------------------------------------


def _facade_input(name: str, size: tuple[int, int], seed: int) -> NDArray[np.float32]:
    """A real label map as the gateway would send it, with random per-class features."""
    h, w = size
    with Image.open(FACADES / "train" / "label" / f"{name}.png") as im:
        label = cmp_facade_classes(np.asarray(im.resize((w, h), Image.Resampling.NEAREST)))
    rng = np.random.default_rng(seed)
    feats = {c: rng.uniform(-1, 1, FACADES_FEAT_NUM) for c in range(FACADES_N_CLASSES)}
    return generator_input(
        label, None, feats, n_classes=FACADES_N_CLASSES, feat_num=FACADES_FEAT_NUM
    )


@needs_facades
def test_tiny_generator_exports_to_onnx_with_dynamic_size(tmp_path: Path) -> None:
    card = ModelCard(
        name="pix2pixhd-facades-tiny-test",
        architecture="pix2pixhd_facades_tiny",
        inputs=(TensorSpec(name="label", dims=(FACADES_INPUT_NC, -1, -1)),),
        outputs=(TensorSpec(name="image", dims=(3, -1, -1)),),
        min_input_size=16,
        weights=WeightsSpec(importer="test", source="random", license="-", upstream="-"),
        spec=SynthesisSpec(class_names=CMP_FACADE_CLASSES, feat_num=3),
    )
    torch.manual_seed(0)
    model = build_network("pix2pixhd_facades_tiny").eval()
    path = export_onnx(model, card, tmp_path / "model.onnx")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims][1:] == [16, "label_dim2", "label_dim3"]
    images = [
        ("cmp_b0001@256x512", _facade_input("cmp_b0001", (256, 512), 0)),
        ("cmp_b0002@128x128", _facade_input("cmp_b0002", (128, 128), 1)),
    ]
    report = check_parity(model, path, card, images, tolerance=1e-4)
    assert report.max_abs_err < 1e-4
