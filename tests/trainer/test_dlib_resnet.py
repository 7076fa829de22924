"""dlib's face-recognition ResNet: .dat reader, importer, parity with dlib, ONNX, alignment.

Reference: dlib itself (``dlib.face_recognition_model_v1.compute_face_descriptor`` on the
chip ``dlib.get_face_chip`` cuts), run on the real photos in shared/data/faces_verify.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from gantry.core.preprocess import normalise
from trainer.archs import ARCHS
from trainer.archs.dlib_resnet import (
    DlibResNet,
    add_zero_padded,
)
from trainer.catalog import card
from trainer.catalog.faces import DLIB_CHIP_SIZE, DLIB_CHIP_TEMPLATE_5PT, DLIB_MEAN_RGB
from trainer.weights.dlib import (
    DLIB_DISTANCE_THRESHOLD,
    DlibFace,
    derive_dlib_template,
    dlib_faces,
    packaged_model_path,
    state_dict_from_dlib_net,
)
from trainer.weights.errors import WeightImportError
from trainer.weights.formats.dlib_dat import (
    AddPrev,
    Affine,
    Conv,
    DlibNet,
    FullyConnected,
    Pool,
    TagOrSkip,
    parse_dlib_net,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
KNN = DATA / "faces_verify" / "face_recognition_knn"

# Measured (x86-64, dlib 20.0.1, torch 2.13): cosine 1 - 3e-13, max |diff| 3.6e-7 on the 9
# faces_verify chips. The gates leave room for other CPUs' float summation orders while
# failing on any real mistake (BGR input or a 127.5 mean still give cosine 0.98-0.9997).
MIN_COSINE_VS_DLIB = 0.9999
MAX_ABS_DIFF_VS_DLIB = 1e-5
# Our alignment (5 detector-style points → DLIB_CHIP_TEMPLATE_5PT, bilinear warp) vs dlib's
# chips: measured cosine 0.989-0.998, mean 0.994. The per-face gate is a little looser than
# the mean because one landmark set is from a different predictor than the chip's.
MIN_COSINE_ALIGNED = 0.985
MIN_MEAN_COSINE_ALIGNED = 0.99

FArray = npt.NDArray[np.float64]


def _cosine(a: FArray, b: FArray) -> FArray:
    return np.asarray((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    try:
        return packaged_model_path().read_bytes()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def dat_net(dat_bytes: bytes) -> DlibNet:
    return parse_dlib_net(dat_bytes, "dlib_face_recognition_resnet_model_v1.dat")


@pytest.fixture(scope="module")
def model(dat_net: DlibNet) -> DlibResNet:
    net = DlibResNet()
    state_dict_from_dlib_net(dat_net, net)
    return net.eval()


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    found = sorted(p for p in KNN.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg"})
    if not found:
        pytest.skip(f"no photos under {KNN}")
    return found


@pytest.fixture(scope="module")
def faces(photos: list[Path]) -> list[DlibFace]:
    pytest.importorskip("dlib")
    # Every face in these portraits is > 140 px, so no upsampling: 4x faster detection.
    found = dlib_faces(photos, upsample=0)
    assert len(found) == len(photos), "expected exactly one face per faces_verify photo"
    return found


@pytest.fixture(scope="module")
def dlib_descriptors(faces: list[DlibFace]) -> FArray:
    import dlib

    recognizer = dlib.face_recognition_model_v1(str(packaged_model_path()))
    # The overload taking an already aligned 150x150 chip (num_jitters=0: one plain pass).
    return np.array([np.array(recognizer.compute_face_descriptor(f.chip)) for f in faces])


def _descriptors(model: DlibResNet, chips: list[npt.NDArray[np.uint8]]) -> FArray:
    with torch.no_grad():
        return model(normalize_chips(np.stack(chips))).double().numpy()


# --- reader ----------------------------------------------------------------------------------


def test_dat_holds_the_face_recognition_resnet(dat_net: DlibNet) -> None:
    assert dat_net.loss.distance_threshold == pytest.approx(DLIB_DISTANCE_THRESHOLD)
    assert dat_net.loss.margin == pytest.approx(0.04)
    assert (dat_net.input.rows, dat_net.input.cols) == (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE)
    assert dat_net.input.mean_rgb == pytest.approx(DLIB_MEAN_RGB, abs=1e-4)

    kinds = Counter(type(layer).__name__ for layer in dat_net.layers)
    assert kinds == {
        "Conv": 29,
        "Affine": 29,
        "Relu": 29,
        "TagOrSkip": 22,
        "AddPrev": 14,
        "Pool": 6,
        "FullyConnected": 1,
    }
    convs = [layer for layer in dat_net.layers if isinstance(layer, Conv)]
    assert convs[0].weight.shape == (32, 3, 7, 7)
    assert (convs[0].stride, convs[0].padding) == ((2, 2), (0, 0))
    for conv in convs[1:]:
        # dlib pads a 3x3 convolution by 1 only at stride 1.
        assert conv.weight.shape[2:] == (3, 3)
        assert conv.padding == ((1, 1) if conv.stride == (1, 1) else (0, 0))
    assert sum(conv.stride == (2, 2) for conv in convs) == 5  # stem + 4 downsampling blocks
    assert all(isinstance(layer, Affine) and layer.mode == 0 for layer in dat_net.layers[1:2])
    pools = [layer for layer in dat_net.layers if isinstance(layer, Pool)]
    assert [p.kind for p in pools] == ["max", "avg", "avg", "avg", "avg", "avg"]
    assert pools[-1].window == (0, 0)  # avg_pool_everything
    fc = dat_net.layers[-1]
    assert isinstance(fc, FullyConnected)
    assert fc.weight.shape == (128, 256) and fc.bias is None


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b + b"\x00", id="trailing-byte"),
        pytest.param(lambda b: b.replace(b"\x05relu_", b"\x05relx_", 1), id="unknown-layer"),
        pytest.param(lambda b: b.replace(b"loss_metric_2", b"loss_metric_3", 1), id="other-loss"),
        pytest.param(lambda b: b"\x71" + b[1:], id="bad-integer"),
    ],
)
def test_reader_fails_loudly_on_damaged_files(dat_bytes: bytes, damage: object) -> None:
    assert callable(damage)
    with pytest.raises(WeightImportError):
        parse_dlib_net(damage(dat_bytes))


# --- importer --------------------------------------------------------------------------------


def test_state_dict_has_our_keys(model: DlibResNet, dat_net: DlibNet) -> None:
    assert "dlib_resnet_v1" in ARCHS
    assert isinstance(ARCHS.build("dlib_resnet_v1"), DlibResNet)
    state = state_dict_from_dlib_net(dat_net)
    assert set(state) == set(model.state_dict())
    assert state["stem.conv.weight"].shape == (32, 3, 7, 7)
    assert state["stages.0.blocks.2.conv2.weight"].shape == (32, 32, 3, 3)
    assert state["stages.1.blocks.0.conv1.weight"].shape == (64, 32, 3, 3)
    assert state["stages.4.blocks.0.affine2.bias"].shape == (256,)
    assert state["fc.weight"].shape == (128, 256)
    assert sum(v.numel() for v in state.values()) == 5_614_592


def test_importer_rejects_a_different_topology(dat_net: DlibNet) -> None:
    # Dropping the first block's tag makes the layer sequence that of another network.
    first_tag = next(i for i, layer in enumerate(dat_net.layers) if isinstance(layer, TagOrSkip))
    broken = dataclasses.replace(
        dat_net, layers=dat_net.layers[:first_tag] + dat_net.layers[first_tag + 1 :]
    )
    with pytest.raises(WeightImportError, match="expected TagOrSkip"):
        state_dict_from_dlib_net(broken)
    # One residual add fewer: the sequence runs out of step at that block.
    adds = [i for i, layer in enumerate(dat_net.layers) if isinstance(layer, AddPrev)]
    broken = dataclasses.replace(
        dat_net, layers=dat_net.layers[: adds[5]] + dat_net.layers[adds[5] + 1 :]
    )
    with pytest.raises(WeightImportError):
        state_dict_from_dlib_net(broken)


def test_residual_add_zero_pads_top_left() -> None:
    branch = torch.ones(1, 2, 1, 1)  # more channels, smaller map (a stride-2 branch)
    shortcut = torch.arange(4.0).view(1, 1, 2, 2)
    out = add_zero_padded(branch, shortcut)
    assert out.shape == (1, 2, 2, 2)
    # Channel 0: branch's 1 at the top-left + the whole shortcut; channel 1: branch only.
    expected = torch.tensor([[[[1.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(out, expected)


# --- parity with dlib ------------------------------------------------------------------------


def test_descriptors_match_dlib(
    model: DlibResNet, faces: list[DlibFace], dlib_descriptors: FArray
) -> None:
    ours = _descriptors(model, [f.chip for f in faces])
    cosine = _cosine(ours, dlib_descriptors)
    max_abs = float(np.abs(ours - dlib_descriptors).max())
    print(
        f"vs dlib on {len(faces)} chips: min cosine {cosine.min():.12f}, max |diff| {max_abs:.2e}"
    )
    assert cosine.min() >= MIN_COSINE_VS_DLIB
    assert max_abs <= MAX_ABS_DIFF_VS_DLIB
    # dlib descriptors are not unit length; ours must not be either.
    assert np.linalg.norm(ours, axis=1) == pytest.approx(
        np.linalg.norm(dlib_descriptors, axis=1), abs=1e-5
    )


def test_onnx_export_matches_pytorch(
    model: DlibResNet, faces: list[DlibFace], tmp_path: Path
) -> None:
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "dlib_resnet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # The residual adds compare feature-map shapes in Python; they are constants for the
        # fixed 150x150 input, which is exactly how the tracer records them.
        warnings.filterwarnings("ignore", message=".*might cause the trace to be incorrect")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, DLIB_CHIP_SIZE, DLIB_CHIP_SIZE),),
            str(path),
            input_names=["chip"],
            output_names=["descriptor"],
            dynamic_axes={"chip": {0: "batch"}, "descriptor": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = normalize_chips(np.stack([f.chip for f in faces]))
    for size in (1, 3, len(faces)):  # a batch size other than the traced one
        x = batch[:size]
        (onnx_out,) = session.run(None, {"chip": x.numpy()})
        with torch.no_grad():
            torch_out = model(x).numpy()
        assert onnx_out.shape == (size, 128)
        np.testing.assert_allclose(onnx_out, torch_out, atol=2e-5, rtol=0)


# --- alignment from detector-style landmarks ---------------------------------------------------


def _similarity(src: FArray, dst: FArray) -> FArray:
    """Least-squares similarity (Umeyama) mapping ``src`` points onto ``dst``, as 2x3."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d) / (src_c**2).sum() * len(src))
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


@pytest.mark.parametrize("estimator", ["lmeds", "umeyama"])
def test_template_alignment_reproduces_dlib_chips(
    model: DlibResNet,
    faces: list[DlibFace],
    dlib_descriptors: FArray,
    estimator: str,
) -> None:
    cv2 = pytest.importorskip("cv2")
    from PIL import Image

    template = np.array(DLIB_CHIP_TEMPLATE_5PT)
    chips = []
    for face in faces:
        with Image.open(face.image) as img:
            rgb = np.asarray(img.convert("RGB"))
        if estimator == "lmeds":
            matrix, _ = cv2.estimateAffinePartial2D(
                face.points5.astype(np.float32), template.astype(np.float32), method=cv2.LMEDS
            )
        else:
            matrix = _similarity(face.points5, template)
        size = (DLIB_CHIP_SIZE, DLIB_CHIP_SIZE)
        chips.append(cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR))
    ours = _descriptors(model, chips)
    cosine = _cosine(ours, dlib_descriptors)
    print(f"{estimator}: cosine to dlib-chip descriptors {np.round(cosine, 4)}")
    assert cosine.min() >= MIN_COSINE_ALIGNED
    assert cosine.mean() >= MIN_MEAN_COSINE_ALIGNED

    # What the product decides must not change: same/different at dlib's threshold.
    identity = [f.image.parent.name for f in faces]
    for i, j in itertools.combinations(range(len(faces)), 2):
        ref_match = np.linalg.norm(dlib_descriptors[i] - dlib_descriptors[j])
        our_match = np.linalg.norm(ours[i] - ours[j])
        assert (ref_match < DLIB_DISTANCE_THRESHOLD) == (our_match < DLIB_DISTANCE_THRESHOLD)
        assert (our_match < DLIB_DISTANCE_THRESHOLD) == (identity[i] == identity[j])


def test_template_constant_is_in_dlibs_chip_frame(photos: list[Path]) -> None:
    pytest.importorskip("dlib")
    stats = derive_dlib_template(photos, upsample=0)
    assert stats.faces == len(photos)
    # 9 portraits vs the 76-face constant: means agree to a few px (nose/mouth std 5-8 px).
    np.testing.assert_allclose(stats.template, np.array(DLIB_CHIP_TEMPLATE_5PT), atol=6.0)


def normalize_chips(chips: npt.NDArray[np.uint8]) -> torch.Tensor:
    """(N, H, W, 3) uint8 chips → the network's input, as the dlib card normalises them."""
    return torch.from_numpy(normalise(chips, card("dlib-resnet-v1")))
