"""The 300-W 68-point faces of ``train/face_landmarks_300w_68pt`` (AFW + HELEN train, research
only), the faces held aside from landmark training, and PFLD's training samples.

Each face is a 256x256 crop (the points' box grown to a square of 1.5 times its longer side)
with its 68 iBUG points in crop pixels, 0-based (``landmarks68.csv``). One face in
:data:`~trainer.data.blur.VAL_EVERY` is held aside by the hash of its path, the rule the
photo datasets use, so the split is fixed by the names alone; landmark training never sees
those faces and the landmark table of ``bench/landmarks.py`` is measured on them.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from trainer.data import Split, register_dataset
from trainer.data.blur import is_held_aside
from trainer.data.sampling import sample_seed

FOLDER = "train/face_landmarks_300w_68pt"
LABELS = "landmarks68.csv"
NUM_POINTS = 68
# iBUG points of the outer eye corners: the inter-ocular distance NME is normalised by.
OUTER_EYE_CORNERS = (36, 45)


@dataclass(frozen=True)
class LabelledFace:
    """One crop (its path under the folder) and its (68, 2) points in crop pixels."""

    path: str
    points: NDArray[np.float64]


def labelled_faces(root: Path, split: Split) -> list[LabelledFace]:
    """The faces of ``split`` ("train" or "val", the held-aside ones) of the folder ``root``
    (``<data_dir>/`` :data:`FOLDER`), in file order."""
    faces = []
    with (root / LABELS).open(newline="") as fh:
        for row in csv.DictReader(fh):
            if is_held_aside(row["path"]) != (split == "val"):
                continue
            xy = [float(row[f"{axis}{i}"]) for i in range(NUM_POINTS) for axis in "xy"]
            faces.append(LabelledFace(row["path"], np.asarray(xy).reshape(NUM_POINTS, 2)))
    return faces


def normalised_mean_error(points: NDArray[np.float64], truth: NDArray[np.float64]) -> float:
    """The mean point-to-point error over the outer-eye-corner distance (the 300-W NME)."""
    left, right = OUTER_EYE_CORNERS
    errors = np.linalg.norm(np.asarray(points) - truth, axis=1)
    return float(errors.mean() / np.linalg.norm(truth[left] - truth[right]))


# --- pose and conditions ------------------------------------------------------------------------

# A mean 3D face at 14 iBUG points (brow ends, eye corners, nostrils, mouth corners, lower lip,
# chin), the head-pose model PFLD's reference (polarisZhao/PFLD-pytorch) solves the pose with.
# Its published coordinates have x towards the image's left, y up, z towards the viewer (a
# mirror frame); here x is negated, y and z turned to OpenCV's camera axes (x right, y down,
# z away), so a frontal face solves to (nearly) no rotation.
POSE_POINTS = (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8)
_MEAN_FACE_3D = np.array(
    [
        [6.825897, 6.760612, 4.402142],
        [1.330353, 7.122144, 6.903745],
        [-1.330353, 7.122144, 6.903745],
        [-6.825897, 6.760612, 4.402142],
        [5.311432, 5.485328, 3.987654],
        [1.789930, 5.393625, 4.413414],
        [-1.789930, 5.393625, 4.413414],
        [-5.311432, 5.485328, 3.987654],
        [2.005628, 1.409845, 6.165652],
        [-2.005628, 1.409845, 6.165652],
        [2.774015, -2.080775, 5.048531],
        [-2.774015, -2.080775, 5.048531],
        [0.000000, -3.116408, 6.097667],
        [0.000000, -7.415691, 4.070434],
    ]
)
MEAN_FACE_3D = _MEAN_FACE_3D * np.array([-1.0, -1.0, -1.0])
# The reference's camera: principal point at the crop centre, a 60-degree field of view.
FIELD_OF_VIEW_DEG = 60.0


def head_pose(points: NDArray[np.float64], size: float) -> NDArray[np.float64]:
    """(yaw, pitch, roll) in radians of a face from its 68 points (crop pixels, crop ``size``):
    the rotation ``cv2.solvePnP`` fits between :data:`MEAN_FACE_3D` and the points, split as
    ``cv2.RQDecomp3x3`` does (rotations about y, x and z of the camera)."""
    import cv2

    centre = size / 2
    focal = centre / np.tan(np.radians(FIELD_OF_VIEW_DEG / 2))
    camera = np.array([[focal, 0.0, centre], [0.0, focal, centre], [0.0, 0.0, 1.0]])
    image_points = np.ascontiguousarray(points[list(POSE_POINTS)], np.float64)
    ok, rotation, _ = cv2.solvePnP(MEAN_FACE_3D, image_points, camera, np.zeros(5))
    if not ok:
        return np.zeros(3)
    matrix, _ = cv2.Rodrigues(rotation)
    pitch, yaw, roll = cv2.RQDecomp3x3(matrix)[0]
    return np.radians([yaw, pitch, roll])


# PFLD's rare-condition classes, as far as 68 points tell them: 300-W has no attribute labels
# (WFLW's occlusion, blur, make-up and illumination flags), so the classes are the pose bins
# and an open mouth, all derived from the points.
CONDITIONS = ("frontal", "profile", "head_up", "head_down", "expression")
PROFILE_YAW = np.radians(30.0)
TILT_PITCH = np.radians(20.0)
OPEN_MOUTH = 0.15  # inner-lip gap (iBUG 62-66) over the outer-eye-corner distance


def conditions(points: NDArray[np.float64], pose: NDArray[np.float64]) -> NDArray[np.float32]:
    """The face's :data:`CONDITIONS` as a 0/1 vector (frontal: none of the pose bins)."""
    yaw, pitch, _ = pose
    left, right = OUTER_EYE_CORNERS
    gap = np.linalg.norm(points[62] - points[66]) / max(
        float(np.linalg.norm(points[left] - points[right])), 1e-6
    )
    profile, up, down = abs(yaw) > PROFILE_YAW, pitch > TILT_PITCH, pitch < -TILT_PITCH
    frontal = not (profile or up or down)
    return np.array([frontal, profile, up, down, gap > OPEN_MOUTH], np.float32)


# iBUG 68 under a horizontal flip: point i of the mirror image is point FLIP_68[i] of the face.
_JAW_BROWS_NOSE = (*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31)
_EYES = (45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40)
_MOUTH = (54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65)
FLIP_68 = np.array([*_JAW_BROWS_NOSE, *_EYES, *_MOUTH])


# --- the training dataset ------------------------------------------------------------------------

# The crop a sample is cut to: the points' box grown to a square of CROP_SCALE times its longer
# side; training draws the scale, a shift and a rotation around it (held-aside faces: none).
CROP_SCALE = 1.2
SCALE_JITTER = 0.15  # the scale is drawn from CROP_SCALE +- this
SHIFT_JITTER = 0.05  # of the square's side, each axis
MAX_ROTATION_DEG = 20.0


def crop_transform(
    points: NDArray[np.float64], size: int, rng: np.random.Generator | None
) -> NDArray[np.float64]:
    """The (2, 3) affine map from the image onto a ``size`` square crop around ``points``
    (their box's centre and longer side; jittered when ``rng`` is given)."""
    low, high = points.min(axis=0), points.max(axis=0)
    centre, side = (low + high) / 2, float((high - low).max()) * CROP_SCALE
    angle = 0.0
    if rng is not None:
        side *= 1.0 + float(rng.uniform(-SCALE_JITTER, SCALE_JITTER)) / CROP_SCALE
        centre = centre + rng.uniform(-SHIFT_JITTER, SHIFT_JITTER, 2) * side
        angle = float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    scale = size / side
    cos, sin = np.cos(np.radians(angle)) * scale, np.sin(np.radians(angle)) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (size / 2 - linear @ centre)[:, None]])


class Landmarks300W:
    """300-W faces as PFLD trains on them: ``{"image", "points", "pose", "conditions"}``.

    ``image`` is the (3, size, size) crop in [-1, 1]; ``points`` the (68, 2) points relative
    to it ((0, 0) the top-left corner, (1, 1) the bottom-right); ``pose`` (yaw, pitch, roll)
    in radians from those points (:func:`head_pose`); ``conditions`` the 0/1 vector of
    :data:`CONDITIONS`. Training crops are jittered (scale, shift, rotation) from torch's
    global generator, which the loop seeds per step; held-aside crops are fixed.
    """

    def __init__(self, root: Path, split: Split, size: int) -> None:
        self.root = root
        self.size = size
        self.held_aside = split == "val"
        self.faces = labelled_faces(root, split)
        if not self.faces:
            raise FileNotFoundError(f"no labelled faces under {root}")
        self.images = _load_faces(root, tuple(f.path for f in self.faces))

    def __len__(self) -> int:
        return len(self.faces)

    def sample(self, index: int, flip: bool = False) -> dict[str, torch.Tensor]:
        import cv2

        face, image = self.faces[index], self.images[index]
        rng = None if self.held_aside else np.random.default_rng(sample_seed(index, None))
        matrix = crop_transform(face.points, self.size, rng)
        crop = cv2.warpAffine(
            image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )  # fmt: skip
        points = face.points @ matrix[:, :2].T + matrix[:, 2]
        if flip:
            crop = crop[:, ::-1]
            points = np.column_stack([self.size - points[:, 0], points[:, 1]])[FLIP_68]
        pose = head_pose(points, self.size)
        tensor = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float()
        return {
            "image": tensor / 127.5 - 1.0,
            "points": torch.from_numpy(points / self.size).float(),
            "pose": torch.from_numpy(pose).float(),
            "conditions": torch.from_numpy(conditions(points, pose)),
        }


@functools.lru_cache(maxsize=4)
def _load_faces(root: Path, paths: tuple[str, ...]) -> tuple[NDArray[np.uint8], ...]:
    # Decoded once per process (tests and evaluations build the dataset many times).
    faces = []
    for path in paths:
        with Image.open(root / path) as im:
            faces.append(np.asarray(im.convert("RGB")))
    return tuple(faces)


@register_dataset("face_landmarks_300w", Path(FOLDER))
def face_landmarks_300w(root: Path, split: Split, size: int) -> Landmarks300W:
    """300-W 68-point faces (AFW + HELEN train; research only), one in eight held aside."""
    return Landmarks300W(root, split, size)
