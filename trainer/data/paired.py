"""Paired image datasets: an input image and its target, e.g. a facade label map and photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from gantry.core.labelmaps import CMP_FACADE_CLASSES, cmp_facade_classes, generator_input
from trainer.data import Sample, Split, register_dataset

FACADES = Path("train") / "cmp_facades"


def to_tensor(image: NDArray[np.uint8], flip: bool) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, H, W) float in [-1, 1], mirrored left-right if ``flip``."""
    if flip:
        image = image[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(image).transpose(2, 0, 1)).float() / 127.5 - 1


class PairedImages:
    """``label/<stem>.png`` → ``photo/<stem>.jpg`` pairs of one split, held in memory.

    The label maps are palette PNGs whose values are CMP classes; as RGB they are the
    colour-coded maps pix2pix's facades set is made of, so ``input`` is that colour image
    (resized NEAREST, so no new colours appear) and ``target`` the photo (BICUBIC).
    """

    def __init__(self, root: Path, size: int) -> None:
        labels = {p.stem for p in (root / "label").glob("*.png")}
        photos = {p.stem for p in (root / "photo").glob("*.jpg")}
        self.names = sorted(labels & photos)
        if not self.names:
            raise FileNotFoundError(f"no label/photo pairs under {root}")
        self.inputs = np.stack(
            [self._load(root / "label" / f"{n}.png", size, True) for n in self.names]
        )
        self.targets = np.stack(
            [self._load(root / "photo" / f"{n}.jpg", size, False) for n in self.names]
        )

    @staticmethod
    def _load(path: Path, size: int, nearest: bool) -> NDArray[np.uint8]:
        resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB").resize((size, size), resample))

    def __len__(self) -> int:
        return len(self.names)

    def sample(self, index: int, flip: bool = False) -> Sample:
        return {
            "input": to_tensor(self.inputs[index], flip),
            "target": to_tensor(self.targets[index], flip),
        }


@register_dataset("cmp_facades", FACADES)
def cmp_facades(root: Path, split: Split, size: int) -> PairedImages:
    """CMP facades (research only): colour label map → photo, ``train`` 302 / ``val`` 37."""
    return PairedImages(root / split, size)


class FacadeLabelMaps(PairedImages):
    """CMP facades as pix2pixHD reads them: class ids, not colours.

    ``label`` is the generator's label part (12 one-hot classes + the instance boundary, the
    label map standing in for the instance map, built by the same code the gateway uses),
    ``inst`` the (1, H, W) class ids the encoder pools its features over, ``input`` the colour
    map (for sample grids) and ``target`` the photo.
    """

    def __init__(self, root: Path, size: int) -> None:
        super().__init__(root, size)
        self.classes = np.stack(
            [self._classes(root / "label" / f"{n}.png", size) for n in self.names]
        )

    @staticmethod
    def _classes(path: Path, size: int) -> NDArray[np.int64]:
        with Image.open(path) as im:
            # Palette PNG: the pixel values are the class ids (convert("RGB") would lose them).
            return cmp_facade_classes(np.asarray(im.resize((size, size), Image.Resampling.NEAREST)))

    def sample(self, index: int, flip: bool = False) -> Sample:
        classes = self.classes[index][:, ::-1] if flip else self.classes[index]
        classes = np.ascontiguousarray(classes)
        label = generator_input(classes, None, None, n_classes=len(CMP_FACADE_CLASSES))
        return {
            **super().sample(index, flip),
            "label": torch.from_numpy(label),
            "inst": torch.from_numpy(classes)[None],
        }


@register_dataset("cmp_facades_labels", FACADES)
def cmp_facades_labels(root: Path, split: Split, size: int) -> FacadeLabelMaps:
    """CMP facades (research only) as class maps: one-hot + boundary, instance ids, photo."""
    return FacadeLabelMaps(root / split, size)
