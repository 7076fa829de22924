"""MTCNN P/R/O-Net: facenet-pytorch keys and outputs, a real face, ONNX export."""

from __future__ import annotations

import ast
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import nn

from gantry.core.preprocess import normalise
from trainer.archs import build_network
from trainer.archs.mtcnn import ONET_SIZE, RNET_SIZE
from trainer.catalog import card
from trainer.weights.errors import WeightImportError
from trainer.weights.mtcnn import (
    ARCH_BY_NET,
    load_mtcnn,
    package_data_dir,
    state_dict_mtcnn,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OBAMA = DATA / "faces_verify" / "face_recognition_knn" / "obama" / "obama.jpg"
# Regions of the 910x1137 portrait, (x0, y0, x1, y1): a square around the face (eyebrows to
# chin, as MTCNN's square boxes frame it) and a patch of the red curtain behind him.
FACE = (372, 140, 612, 380)
CURTAIN = (170, 150, 298, 278)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def data_dir() -> Path:
    try:
        return package_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def nets(data_dir: Path) -> dict[str, nn.Module]:
    return {name: load_mtcnn(name) for name in ARCH_BY_NET}


@pytest.fixture(scope="module")
def portrait() -> npt.NDArray[np.uint8]:
    cv2 = pytest.importorskip("cv2")
    if not OBAMA.is_file():
        pytest.skip(f"test image not found: {OBAMA}")
    image = cv2.imread(str(OBAMA), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (1137, 910, 3)
    return np.ascontiguousarray(image[..., ::-1])  # the nets take RGB


def _patch(rgb: npt.NDArray[np.uint8], size: int) -> torch.Tensor:
    """Area-resize an RGB patch to ``size`` and normalise it to a 1x3xSxS net input."""
    import cv2

    resized = cv2.resize(np.ascontiguousarray(rgb), (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(normalise(resized[None], card("mtcnn-pnet")))


def _crop(image: npt.NDArray[np.uint8], box: tuple[int, int, int, int]) -> npt.NDArray[np.uint8]:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


# --- weights and shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("net", sorted(ARCH_BY_NET))
def test_packaged_state_dict_keys_match_exactly(net: str, data_dir: Path) -> None:
    raw = torch.load(data_dir / f"{net}.pt", map_location="cpu", weights_only=True)
    model = build_network(ARCH_BY_NET[net])
    # Same names in the same order: our modules register layers as facenet-pytorch does.
    assert list(model.state_dict()) == list(raw)
    state = state_dict_mtcnn(net)
    model.load_state_dict(state, strict=True)
    for key, value in raw.items():
        assert torch.equal(state[key], value)


def test_state_dict_rejects_a_mismatched_file(data_dir: Path) -> None:
    with pytest.raises(WeightImportError, match="does not fit mtcnn_onet"):
        state_dict_mtcnn("onet", data_dir / "rnet.pt")
    with pytest.raises(KeyError, match="known: onet, pnet, rnet"):
        state_dict_mtcnn("qnet")


@pytest.mark.parametrize(("height", "width"), [(12, 12), (37, 53), (100, 64)])
def test_pnet_is_fully_convolutional(nets: dict[str, nn.Module], height: int, width: int) -> None:
    with torch.no_grad():
        reg, prob = nets["pnet"](torch.randn(2, 3, height, width))
    # conv3 → ceil-mode pool /2 → conv3 → conv3: a 12x12 window at stride 2.
    h = (height - 2 + 1) // 2 - 4
    w = (width - 2 + 1) // 2 - 4
    assert reg.shape == (2, 4, h, w) and prob.shape == (2, 2, h, w)
    assert torch.allclose(prob.sum(1), torch.ones(2, h, w), atol=1e-6)


def test_rnet_onet_output_order_and_shapes(nets: dict[str, nn.Module]) -> None:
    with torch.no_grad():
        r_out = nets["rnet"](torch.randn(5, 3, RNET_SIZE, RNET_SIZE))
        o_out = nets["onet"](torch.randn(5, 3, ONET_SIZE, ONET_SIZE))
    assert [tuple(t.shape) for t in r_out] == [(5, 4), (5, 2)]
    assert [tuple(t.shape) for t in o_out] == [(5, 4), (5, 10), (5, 2)]
    # Probabilities come last in both.
    assert torch.allclose(r_out[-1].sum(1), torch.ones(5), atol=1e-6)
    assert torch.allclose(o_out[-1].sum(1), torch.ones(5), atol=1e-6)


def test_card_normalisation_matches_facenet_pytorch() -> None:
    rgb = np.array([[[[0, 127.5, 255]]]], dtype=np.float32)  # one pixel, (N, H, W, 3)
    for stage in ("pnet", "rnet", "onet"):
        got = normalise(rgb, card(f"mtcnn-{stage}")).reshape(-1)
        assert np.array_equal(got, np.array([-0.99609375, 0.0, 0.99609375], np.float32))


def _facenet_reference_classes() -> dict[str, Any]:
    """facenet-pytorch's own PNet/RNet/ONet, executed from the installed source file.

    Importing ``facenet_pytorch`` needs torchvision, which is not installed; the three class
    definitions only need torch, so they are compiled on their own from the package's file.
    """
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("facenet-pytorch is not installed")
    source = Path(spec.submodule_search_locations[0]) / "models" / "mtcnn.py"
    tree = ast.parse(source.read_text(), filename=str(source))
    classes: list[ast.stmt] = [
        n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Net")
    ]
    assert {c.name for c in classes if isinstance(c, ast.ClassDef)} == {"PNet", "RNet", "ONet"}
    namespace: dict[str, Any] = {"torch": torch, "nn": nn, "os": os}
    exec(compile(ast.Module(body=classes, type_ignores=[]), str(source), "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    ("name", "shape"),
    [("PNet", (2, 3, 37, 53)), ("RNet", (3, 3, 24, 24)), ("ONet", (3, 3, 48, 48))],
)
def test_bit_exact_with_facenet_pytorch_modules(
    nets: dict[str, nn.Module], name: str, shape: tuple[int, ...]
) -> None:
    reference = _facenet_reference_classes()[name](pretrained=False).eval()
    ours = nets[name.lower()]
    reference.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = reference(x), ours(x)
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert torch.equal(w, g)


# --- a real face -----------------------------------------------------------------------------


def test_face_crop_scores_high_and_background_low(
    nets: dict[str, nn.Module], portrait: npt.NDArray[np.uint8]
) -> None:
    face = _crop(portrait, FACE)
    curtain = _crop(portrait, CURTAIN)
    noise = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    with torch.no_grad():
        # Measured: face R 0.998 / O 1.000 / P 1.000; curtain and noise all < 0.06.
        assert float(nets["rnet"](_patch(face, RNET_SIZE))[-1][0, 1]) > 0.9
        reg, landmarks, prob = nets["onet"](_patch(face, ONET_SIZE))
        assert float(prob[0, 1]) > 0.9
        assert float(nets["pnet"](_patch(face, 12))[1][0, 1].max()) > 0.9
        for patch in (curtain, noise):
            assert float(nets["rnet"](_patch(patch, RNET_SIZE))[-1][0, 1]) < 0.1
            assert float(nets["onet"](_patch(patch, ONET_SIZE))[-1][0, 1]) < 0.1
            assert float(nets["pnet"](_patch(patch, 12))[1][0, 1].max()) < 0.1
    # Landmarks are x1..x5 then y1..y5, fractions of the crop: eyes above the mouth, the
    # subject's right eye (image left) left of the other.
    xs, ys = landmarks[0, :5], landmarks[0, 5:]
    assert torch.all((xs > 0) & (xs < 1) & (ys > 0) & (ys < 1))
    assert xs[0] < xs[1] and ys[0] < ys[3] and ys[1] < ys[4]
    assert float(reg.abs().max()) < 0.3  # the crop is already close to the face box


# --- ONNX export -----------------------------------------------------------------------------


def _export(model: nn.Module, dummy: torch.Tensor, path: Path, axes: dict[int, str]) -> Any:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    with torch.no_grad():
        outputs = model(dummy)
    names = [f"out{i}" for i in range(len(outputs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            input_names=["input"],
            output_names=names,
            dynamic_axes={"input": axes, **{n: {0: "batch"} for n in names}},
            opset_version=17,
            dynamo=False,
        )
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _assert_parity(sess: Any, model: nn.Module, x: torch.Tensor) -> None:
    got = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        want = model(x)
    for g, w in zip(got, want, strict=True):
        assert g.shape == tuple(w.shape)
        assert np.abs(g - w.numpy()).max() < 1e-4


def test_pnet_onnx_dynamic_height_width(nets: dict[str, nn.Module], tmp_path: Path) -> None:
    pnet = nets["pnet"]
    sess = _export(
        pnet, torch.randn(1, 3, 40, 56), tmp_path / "pnet.onnx", {0: "b", 2: "h", 3: "w"}
    )
    gen = torch.Generator().manual_seed(1)
    # Odd sizes exercise the ceil-mode pooling.
    for shape in [(1, 3, 25, 31), (2, 3, 120, 97)]:
        _assert_parity(sess, pnet, torch.randn(*shape, generator=gen))


@pytest.mark.parametrize(("net", "size"), [("rnet", RNET_SIZE), ("onet", ONET_SIZE)])
def test_rnet_onet_onnx_dynamic_batch(
    nets: dict[str, nn.Module], tmp_path: Path, net: str, size: int
) -> None:
    model = nets[net]
    sess = _export(model, torch.randn(2, 3, size, size), tmp_path / f"{net}.onnx", {0: "b"})
    gen = torch.Generator().manual_seed(2)
    for batch in (1, 7):
        _assert_parity(sess, model, torch.randn(batch, 3, size, size, generator=gen))
