"""Faces labelled by identity, for training and comparing recognition losses.

- **AT&T / ORL** (``train/att_orl_faces``: 10 grey 92x112 crops per person; credit Olivetti
  Research Laboratory): every fourth person (s4, s8, ...) is held aside, so the losses are
  measured on identities the embedder never saw, as verification is used. A crop is the
  92x92 square 10 px from the top (brows to chin), resized to the training size; training
  crops are jittered in position and scale from torch's global generator.
- **Yale** (``train/yale_faces``, 15 people, evaluation only, research only): the frames are
  320x243 with the head in the middle; each face is found by dlib's HOG detector and cut as
  the square of 1.3 times its box (about the ORL crops' framing, by eye), pixel-identical
  duplicates of the original database (e.g. subject02 noglasses == normal) kept once.

Samples are ``{"image": (3, size, size) in [-1, 1] (grey in three channels), "label": int}``.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from trainer.data import Split, register_dataset
from trainer.data.sampling import sample_seed

ORL_FOLDER = "train/att_orl_faces"
YALE_FOLDER = "train/yale_faces/yalefaces"
HELD_ASIDE_EVERY = 4  # person s<N> is held aside when N % 4 == 0
ORL_CROP_TOP = 10
SHIFT_JITTER = 0.06  # of the crop side
SCALE_JITTER = 0.08
YALE_BOX_SCALE = 1.3


def orl_people(root: Path, split: Split) -> list[str]:
    """The ORL folders (``s1`` ...) of ``split``, in numeric order."""
    people = sorted((p.name for p in root.iterdir() if p.is_dir()), key=lambda n: int(n[1:]))
    return [p for p in people if (int(p[1:]) % HELD_ASIDE_EVERY == 0) == (split == "val")]


def _square(grey: NDArray[np.uint8], top: int) -> NDArray[np.uint8]:
    side = grey.shape[1]
    return grey[top : top + side]


@functools.lru_cache(maxsize=4)
def load_orl(root: Path, split: Split) -> tuple[tuple[NDArray[np.uint8], ...], tuple[int, ...]]:
    """(92x92 grey crops, identity index) of ``split``'s people, ten images each."""
    images, labels = [], []
    for label, person in enumerate(orl_people(root, split)):
        for path in sorted((root / person).glob("*.pgm"), key=lambda p: int(p.stem)):
            with Image.open(path) as im:
                images.append(_square(np.asarray(im.convert("L")), ORL_CROP_TOP))
            labels.append(label)
    return tuple(images), tuple(labels)


@functools.lru_cache(maxsize=2)
def load_yale(root: Path) -> tuple[tuple[NDArray[np.uint8], ...], tuple[int, ...]]:
    """(square grey face crops, subject index) of the Yale faces dlib finds, duplicates once."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    images, labels, seen = [], [], set()
    for path in sorted(root.iterdir()):
        if not path.name.startswith("subject"):
            continue
        with Image.open(path) as im:
            grey = np.asarray(im.convert("L"))
        digest = hashlib.sha256(grey.tobytes()).hexdigest()
        boxes = detector(grey, 1)
        if digest in seen or not boxes:
            continue
        seen.add(digest)
        box = max(boxes, key=lambda r: r.width() * r.height())
        cx, cy = (box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2
        side = max(box.width(), box.height()) * YALE_BOX_SCALE
        left, top = round(cx - side / 2), round(cy - side / 2)
        square = Image.fromarray(grey).crop((left, top, left + round(side), top + round(side)))
        images.append(np.asarray(square))
        labels.append(int(path.name[len("subject") : len("subject") + 2]) - 1)
    return tuple(images), tuple(labels)


def to_tensor(grey: NDArray[np.uint8], size: int) -> torch.Tensor:
    """A grey square resized to ``size`` as a (3, size, size) tensor in [-1, 1]."""
    resized = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.BILINEAR))
    channel = torch.from_numpy(resized.astype(np.float32) / 127.5 - 1.0)
    return channel.expand(3, size, size).clone()


class IdentityFaces:
    """Grey face squares with identity labels (see the module docstring)."""

    def __init__(
        self,
        images: tuple[NDArray[np.uint8], ...],
        labels: tuple[int, ...],
        size: int,
        jitter: bool,
    ) -> None:
        if not images:
            raise FileNotFoundError("no labelled faces")
        self.images, self.labels, self.size, self.jitter = images, labels, size, jitter
        self.classes = max(labels) + 1

    def __len__(self) -> int:
        return len(self.images)

    def crop(self, index: int) -> NDArray[np.uint8]:
        grey = self.images[index]
        if not self.jitter:
            return grey
        side = grey.shape[0]
        rng = np.random.default_rng(sample_seed(index, None))
        cut = round(side * (1 - float(rng.uniform(0, SCALE_JITTER))))
        room = side - cut
        dx, dy = (
            int(np.clip(round(room / 2 + rng.uniform(-1, 1) * SHIFT_JITTER * side), 0, room))
            for _ in range(2)
        )
        return grey[dy : dy + cut, dx : dx + cut]

    def sample(self, index: int, flip: bool = False) -> dict[str, torch.Tensor]:
        image = to_tensor(self.crop(index), self.size)
        return {
            "image": image.flip(-1) if flip else image,
            "label": torch.tensor(self.labels[index]),
        }

    def batch(self) -> dict[str, torch.Tensor]:
        """Every face, un-jittered, as one batch."""
        return {
            "image": torch.stack([to_tensor(g, self.size) for g in self.images]),
            "label": torch.tensor(self.labels),
        }


@register_dataset("att_orl_identities", Path(ORL_FOLDER))
def att_orl_identities(root: Path, split: Split, size: int) -> IdentityFaces:
    """ORL faces: three people in four to train on (jittered crops), the fourth held aside."""
    images, labels = load_orl(root, split)
    return IdentityFaces(images, labels, size, jitter=split == "train")


def yale_faces(data_dir: Path, size: int) -> IdentityFaces:
    """The Yale faces dlib finds (evaluation only; research only)."""
    images, labels = load_yale(data_dir / YALE_FOLDER)
    return IdentityFaces(images, labels, size, jitter=False)
