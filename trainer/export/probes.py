"""Real images, prepared as each card says, for the export parity gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from gantry.cards import ModelCard
from gantry.preprocess import normalise

_PHOTOS: dict[str, tuple[str, ...]] = {
    "superres": (
        "superres/Set5/LR_bicubic/X4/babyx4.png",
        "superres/Set5/LR_bicubic/X4/birdx4.png",
    ),
    "face_detection": (
        "faces_detect/dlib_voc/2008_001322.jpg",
        "faces_verify/face_recognition_knn/obama/obama.jpg",
    ),
    "face_detection_stage": ("faces_verify/face_recognition_knn/obama/obama.jpg",),
    "face_embedding": (
        "faces_verify/face_recognition_knn/obama/obama.jpg",
        "faces_verify/face_recognition_knn/biden/biden.jpg",
    ),
}
# Crops small enough that the 23-block RRDBNet check stays in seconds on a CPU.
SUPERRES_CROP = 48
DETECTION_LONG_SIDE = 160


def _center_square(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return rgb[top : top + side, left : left + side]


def _prepare(rgb: NDArray[np.uint8], card: ModelCard) -> NDArray[np.uint8]:
    fixed = card.input_hw
    if fixed is not None:
        square = Image.fromarray(_center_square(rgb))
        return np.asarray(square.resize((fixed[1], fixed[0]), Image.Resampling.BILINEAR))
    h, w = rgb.shape[:2]
    if card.task == "superres":
        top, left = max((h - SUPERRES_CROP) // 2, 0), max((w - SUPERRES_CROP) // 2, 0)
        return rgb[top : top + SUPERRES_CROP, left : left + SUPERRES_CROP]
    scale = DETECTION_LONG_SIDE / max(h, w)
    size = (max(round(w * scale), 12), max(round(h * scale), 12))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _synthesis_inputs(card: ModelCard, data_dir: Path) -> list[tuple[str, NDArray[Any]]]:
    """Real facade label maps turned into generator inputs, at two sizes."""
    from gantry.labelmaps import cmp_facade_classes, generator_input

    assert card.n_classes is not None
    inputs = []
    labels = sorted((data_dir / "train" / "cmp_facades" / "val" / "label").glob("*.png"))[:1]
    for path, (h, w) in zip(labels * 2, ((256, 512), (128, 128)), strict=True):
        label = Image.open(path).resize((w, h), Image.Resampling.NEAREST)
        classes = cmp_facade_classes(np.asarray(label))
        rng = np.random.default_rng(0)
        features = {c: rng.uniform(-1, 1, card.feat_num) for c in range(card.n_classes)}
        x = generator_input(
            classes, None, features, n_classes=card.n_classes, feat_num=card.feat_num
        )
        inputs.append((f"{path.relative_to(data_dir)} at {h}x{w}", x))
    return inputs


def probe_inputs(card: ModelCard, data_dir: Path) -> list[tuple[str, NDArray[Any]]]:
    """(label, CHW float32) real inputs for ``card``, from ``data_dir`` (../shared/data).

    Without the data directory the gate still runs, on a fixed pseudo-random image.
    """
    if card.task == "synthesis":
        found = _synthesis_inputs(card, data_dir)
        if found:
            return found
    inputs: list[tuple[str, NDArray[Any]]] = []
    for rel in _PHOTOS.get(card.task, ()):
        path = data_dir / rel
        if path.exists():
            rgb = np.asarray(Image.open(path).convert("RGB"))
            inputs.append((rel, normalise(_prepare(rgb, card), card)))
    if not inputs:
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        inputs.append(("random-64x64", normalise(_prepare(rgb, card), card)))
    return inputs
