"""Unpaired two-domain face datasets (CycleGAN): CelebA faces with one attribute and not another.

Domain A holds the faces labelled ``attribute_a`` and not ``attribute_b``, domain B the
reverse (a face labelled both, one in this subset for black and blond hair, is in neither),
read from the official ``list_attr_celeba.txt``; for black ↔ blond hair these are exactly
the ``unpaired_domains/black_to_blond_hair_{A,B}.txt`` lists. Each domain's file names are
sorted and its last :data:`VAL_PER_DOMAIN` are held aside (``split="val"``): training never
sees them, and evaluation measures translations of them.

Faces are CelebA's aligned images (89x109 here), centre-cropped to the 89x89 square the
usual CelebA pipelines use (178 of 178x218 at full size: StarGAN, AttGAN), then resized to
``size`` (BICUBIC).

Samples are ``{"a": ..., "b": ...}``, drawn independently, as junyanz's ``unaligned``
dataset does: the dataset's length is the larger domain's, index ``i`` gives A's face
``i mod n_A`` and B's face ``perm[i] mod n_B`` for a fixed permutation ``perm`` of the
indices. So the step sampler's shuffles decide both faces, deterministically (resume repeats
them), but face ``a`` and face ``b`` of a sample are unrelated people.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from trainer.data import Sample, Split, register_dataset
from trainer.data.paired import to_tensor

Domain = Literal["a", "b"]

CELEBA = Path("train") / "celeba_attr_subset"
ATTRIBUTES_FILE = "list_attr_celeba.txt"
IMAGES_DIR = "images"
# Faces of each domain held aside for evaluation: the last of each sorted list.
VAL_PER_DOMAIN = 100
# The square of an aligned CelebA image that the usual pipelines keep (at 89x109: rows 10-98).
CELEBA_SQUARE = 89
# Fixed seed of the permutation that draws B's face for an index (not A's face's partner).
_B_PERMUTATION_SEED = 0xB


def read_celeba_attributes(path: Path) -> dict[str, dict[str, bool]]:
    """``list_attr_celeba.txt`` → ``{file name: {attribute: present}}``.

    The format: a count line, a line of the 40 attribute names, then ``<file> ±1 x40``.

    Raises:
        ValueError: a row whose values do not match the header.
    """
    lines = path.read_text().splitlines()
    names = lines[1].split()
    table: dict[str, dict[str, bool]] = {}
    for line in lines[2:]:
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise ValueError(f"{path.name}: row {fields[0]} has {len(fields) - 1} values")
        table[fields[0]] = {n: v == "1" for n, v in zip(names, fields[1:], strict=True)}
    return table


def domain_files(attributes: dict[str, dict[str, bool]], present: str, absent: str) -> list[str]:
    """Sorted file names labelled ``present`` and not ``absent``.

    Raises:
        KeyError: an attribute the labels do not have (the message lists them).
    """
    known = next(iter(attributes.values()), {})
    for name in (present, absent):
        if name not in known:
            raise KeyError(f"unknown CelebA attribute {name!r}; known: {', '.join(known)}")
    return sorted(f for f, a in attributes.items() if a[present] and not a[absent])


def celeba_hair_held_aside(
    attributes: dict[str, dict[str, bool]],
) -> tuple[list[str], list[str]]:
    """The faces ``celeba_hair`` holds aside: the last :data:`VAL_PER_DOMAIN` of each domain
    (black-haired, blond-haired), sorted.

    Other CelebA datasets hold these aside too (:mod:`trainer.data.attributes`), so no
    family trains on a face another is measured on.
    """
    black = domain_files(attributes, "Black_Hair", "Blond_Hair")
    blond = domain_files(attributes, "Blond_Hair", "Black_Hair")
    return black[-VAL_PER_DOMAIN:], blond[-VAL_PER_DOMAIN:]


def load_face(path: Path, size: int) -> NDArray[np.uint8]:
    """An aligned CelebA image's centre square resized to ``size`` (H, W, 3) uint8."""
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        side = min(rgb.width, rgb.height, CELEBA_SQUARE)
        left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
        square = rgb.crop((left, top, left + side, top + side))
        return np.asarray(square.resize((size, size), Image.Resampling.BICUBIC))


class UnpairedFaces:
    """Two domains of faces of one split, held in memory as uint8 arrays.

    Args:
        root: the ``celeba_attr_subset`` folder.
        attribute_a: CelebA attribute of domain A (e.g. ``Black_Hair``).
        attribute_b: CelebA attribute of domain B (e.g. ``Blond_Hair``).
        split: ``train`` (all but the held-aside faces) or ``val`` (the last
            :data:`VAL_PER_DOMAIN` of each domain).
        size: square size in pixels.

    Attributes:
        files_a, files_b: the split's file names per domain, sorted.
        a, b: (N, size, size, 3) uint8 faces per domain.
    """

    def __init__(
        self, root: Path, attribute_a: str, attribute_b: str, split: Split, size: int
    ) -> None:
        attributes = read_celeba_attributes(root / ATTRIBUTES_FILE)
        self.files_a = self._split(domain_files(attributes, attribute_a, attribute_b), split)
        self.files_b = self._split(domain_files(attributes, attribute_b, attribute_a), split)
        if not self.files_a or not self.files_b:
            raise FileNotFoundError(
                f"{root}: a {split} domain of {attribute_a}/{attribute_b} is empty"
            )
        images = root / IMAGES_DIR
        self.a = np.stack([load_face(images / f, size) for f in self.files_a])
        self.b = np.stack([load_face(images / f, size) for f in self.files_b])
        self._b_of = np.random.default_rng(_B_PERMUTATION_SEED).permutation(len(self))

    @staticmethod
    def _split(files: list[str], split: Split) -> list[str]:
        if len(files) <= 2 * VAL_PER_DOMAIN:
            raise ValueError(f"a domain of {len(files)} faces cannot spare {VAL_PER_DOMAIN}")
        return files[-VAL_PER_DOMAIN:] if split == "val" else files[:-VAL_PER_DOMAIN]

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def sample(self, index: int, flip: bool = False) -> Sample:
        """A's face ``index mod n_A`` and an unrelated B face, both (3, H, W) in [-1, 1]."""
        b_index = int(self._b_of[index]) % len(self.b)
        return {
            "a": to_tensor(self.a[index % len(self.a)], flip),
            "b": to_tensor(self.b[b_index], flip),
        }

    def faces(self, domain: Domain) -> torch.Tensor:
        """Every face of domain ``"a"`` or ``"b"`` as a (N, 3, H, W) uint8 tensor (a view)."""
        return torch.from_numpy(self.a if domain == "a" else self.b).permute(0, 3, 1, 2)

    def images(self, domain: Domain, count: int | None = None) -> torch.Tensor:
        """The first ``count`` (default all) faces of a domain, (N, 3, H, W) in [-1, 1]."""
        return self.faces(domain)[:count].float() / 127.5 - 1


@register_dataset("celeba_hair", CELEBA)
def celeba_hair(root: Path, split: Split, size: int) -> UnpairedFaces:
    """CelebA black hair (A, 1,115 train / 100 val) ↔ blond hair (B, 629 / 100); research only."""
    return UnpairedFaces(root, "Black_Hair", "Blond_Hair", split, size)
