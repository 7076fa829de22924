"""CelebA faces with their attribute labels (StarGAN): every face, every one of the 40 labels.

A sample is ``{"image": (3, S, S) in [-1, 1], "attributes": (40,) float 0/1}`` in the order
of the header of ``list_attr_celeba.txt``; a recipe picks its own columns (StarGAN's
selected attributes, :meth:`CelebAAttributes.columns`), so one registered dataset serves any
choice of attributes. Faces are cut as :mod:`trainer.data.unpaired` cuts them (the 89x89
centre square, as yunjey's ``CenterCrop(178)`` at full size, resized to ``size``).

Held aside (``split="val"``), chosen from the labels alone and the same for any selection
of attributes, 300 faces:

* the 200 faces ``celeba_hair`` holds aside (the last 100 black-not-blond and the last 100
  blond-not-black faces, :func:`trainer.data.unpaired.celeba_hair_held_aside`), so neither
  family trains on a face the other is measured on;
* the last :data:`~trainer.data.unpaired.VAL_PER_DOMAIN` brown-haired faces labelled
  neither black- nor blond-haired, so each of the three hair colours of yunjey's default
  selection is a target of as many held-aside faces.

They are in the order black, blond, brown, black, ... (each group sorted by file name), so
the first ``data.val_images`` an evaluation translates hold the three about equally.
Training (``split="train"``) is the other 4,700 faces, sorted by file name. yunjey holds
aside 1,999 of CelebA's 202,599 faces after a seeded shuffle; a shuffle of this 5,000-face
subset would not match his, so the split here is one of our own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from trainer.data import Sample, Split, build_dataset, register_dataset
from trainer.data.paired import to_tensor
from trainer.data.unpaired import (
    ATTRIBUTES_FILE,
    CELEBA,
    IMAGES_DIR,
    VAL_PER_DOMAIN,
    celeba_hair_held_aside,
    load_face,
    read_celeba_attributes,
)


def held_aside_files(attributes: dict[str, dict[str, bool]]) -> list[str]:
    """The faces :class:`CelebAAttributes` holds aside (see the module docstring), the three
    hair-colour groups interleaved (black, blond, brown, black, ...), so any first ``n`` of
    them hold the groups about equally.

    Raises:
        ValueError: a group has too few faces to spare :data:`VAL_PER_DOMAIN` (a subset too
            small for this split).
    """
    brown = sorted(
        f
        for f, a in attributes.items()
        if a["Brown_Hair"] and not a["Black_Hair"] and not a["Blond_Hair"]
    )
    if len(brown) <= 2 * VAL_PER_DOMAIN:
        raise ValueError(f"{len(brown)} brown-haired faces cannot spare {VAL_PER_DOMAIN}")
    black, blond = celeba_hair_held_aside(attributes)
    groups = zip(black, blond, brown[-VAL_PER_DOMAIN:], strict=True)
    return [face for group in groups for face in group]


class CelebAAttributes:
    """Aligned CelebA faces of one split with all 40 attribute labels, in memory.

    Args:
        root: the ``celeba_attr_subset`` folder.
        split: ``train`` or ``val`` (see the module docstring).
        size: square size in pixels.

    Attributes:
        names: the 40 attribute names, in the labels file's order (the label columns).
        files: the split's file names (training: sorted; held aside: groups interleaved).
        faces_uint8: (N, size, size, 3) uint8 faces.
        labels: (N, 40) bool labels.
    """

    def __init__(self, root: Path, split: Split, size: int) -> None:
        table = read_celeba_attributes(root / ATTRIBUTES_FILE)
        self.names: list[str] = list(next(iter(table.values())))
        held_aside = held_aside_files(table)
        self.files = held_aside if split == "val" else sorted(set(table) - set(held_aside))
        images = root / IMAGES_DIR
        self.faces_uint8 = np.stack([load_face(images / f, size) for f in self.files])
        self.labels = np.array([[table[f][n] for n in self.names] for f in self.files], bool)

    def __len__(self) -> int:
        return len(self.files)

    def columns(self, names: Sequence[str]) -> list[int]:
        """The label columns of attributes ``names``, in their order.

        Raises:
            KeyError: an attribute the labels do not have (the message lists them).
        """
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise KeyError(
                f"unknown CelebA attribute {unknown[0]!r}; known: {', '.join(self.names)}"
            )
        return [self.names.index(n) for n in names]

    def sample(self, index: int, flip: bool = False) -> Sample:
        """Face ``index`` (3, H, W) in [-1, 1] and its 40 labels as 0/1 floats."""
        return {
            "image": to_tensor(self.faces_uint8[index], flip),
            "attributes": torch.from_numpy(self.labels[index].astype(np.float32)),
        }

    def faces(self) -> torch.Tensor:
        """Every face as a (N, 3, H, W) uint8 tensor (a view)."""
        return torch.from_numpy(self.faces_uint8).permute(0, 3, 1, 2)

    def images(self, count: int | None = None) -> torch.Tensor:
        """The first ``count`` (default all) faces, (N, 3, H, W) in [-1, 1]."""
        return self.faces()[:count].float() / 127.5 - 1

    def selected(self, names: Sequence[str], count: int | None = None) -> torch.Tensor:
        """The labels of attributes ``names`` of the first ``count`` faces, (N, c) 0/1 floats."""
        return torch.from_numpy(self.labels[:count, self.columns(names)].astype(np.float32))


@register_dataset("celeba_attributes", CELEBA)
def celeba_attributes(root: Path, split: Split, size: int) -> CelebAAttributes:
    """CelebA with its 40 attribute labels (4,700 train / 300 val faces); research only."""
    return CelebAAttributes(root, split, size)


# Fixed seed of the permutation that draws a sample's face without the attribute.
_WITHOUT_PERMUTATION_SEED = 0x0


class AttributePairs:
    """One attribute's two sets of a :class:`CelebAAttributes` split, drawn as GeneGAN draws
    its two batches: a face with the attribute (``au``) and, independently, one without
    (``b0``), as upstream's two shuffled queues of ``attribute == 1`` and ``== -1`` faces.

    The length is the larger set's; index ``i`` gives the face with the attribute ``i mod
    n_with`` and the face without it ``perm[i] mod n_without`` for a fixed permutation
    ``perm``, so the step sampler's shuffles decide both, deterministically (resume repeats
    them). The two faces of a sample are unrelated people.

    Args:
        faces: a split of ``celeba_attributes``.
        attribute: the CelebA attribute (e.g. ``Blond_Hair``).

    Attributes:
        attribute: the attribute's name.
        with_index, without_index: positions in ``faces`` of the faces with and without it.

    Raises:
        KeyError: an attribute the labels do not have (the message lists them).
        ValueError: no face of the split has the attribute, or every face has it.
    """

    def __init__(self, faces: CelebAAttributes, attribute: str) -> None:
        (column,) = faces.columns([attribute])
        present = faces.labels[:, column]
        self.faces = faces
        self.attribute = attribute
        self.with_index = np.flatnonzero(present)
        self.without_index = np.flatnonzero(~present)
        if not len(self.with_index) or not len(self.without_index):
            raise ValueError(f"{attribute}: the split needs faces with it and faces without it")
        self._without_of = np.random.default_rng(_WITHOUT_PERMUTATION_SEED).permutation(len(self))

    def __len__(self) -> int:
        return max(len(self.with_index), len(self.without_index))

    def sample(self, index: int, flip: bool = False) -> Sample:
        """A face with the attribute and an unrelated one without, (3, H, W) in [-1, 1]."""
        with_face = int(self.with_index[index % len(self.with_index)])
        without = int(self.without_index[int(self._without_of[index]) % len(self.without_index)])
        return {
            "au": to_tensor(self.faces.faces_uint8[with_face], flip),
            "b0": to_tensor(self.faces.faces_uint8[without], flip),
        }

    def faces_with(self) -> torch.Tensor:
        """Every face with the attribute, (N, 3, H, W) uint8, in the split's order."""
        return self.faces.faces()[torch.from_numpy(self.with_index)]

    def faces_without(self) -> torch.Tensor:
        """Every face without the attribute, (N, 3, H, W) uint8, in the split's order."""
        return self.faces.faces()[torch.from_numpy(self.without_index)]


def labelled_faces(
    dataset: str, data_dir: Path, split: Split, size: int, *, family: str
) -> CelebAAttributes:
    """The registered ``dataset``'s ``split``, which a face-attribute ``family`` needs to be
    faces with attribute labels.

    Raises:
        TypeError: the dataset has no attribute labels.
    """
    faces = build_dataset(dataset, data_dir, split, size)
    if not isinstance(faces, CelebAAttributes):
        raise TypeError(f"{family} needs faces with attribute labels; {dataset} has none")
    return faces
