"""LR/HR pairs for x4 super-resolution made from sharp photos: bicubic or Real-ESRGAN's.

Two datasets over ``../shared/data/train/natural_photos_sr`` (or any folder of photos, see
``photos_dir`` in the SR configs), with the held-aside split of :mod:`trainer.data.blur`
(:func:`~trainer.data.blur.is_held_aside`: one photo in eight by the hash of its name):

* ``bicubic_x4_photos``: the classic SRGAN / ESRGAN setting: LR is the HR crop downscaled
  x4 by PIL's antialiased bicubic (MATLAB's ``imresize`` kernel), rounded to 8 bits.
* ``realesrgan_x4_photos``: LR from Real-ESRGAN's second-order degradations
  (:mod:`trainer.data.degradations`), the blind setting the served x4plus was trained for.

A sample is ``{"lr": (3, size/4, size/4), "hr": (3, size, size)}`` in [-1, 1] (the data
package's convention; SR generators take [0, 1] and recipes convert). ``size`` is the HR
crop. A pair is a pure function of ``(photo index, seed, flip)``; training seeds come from
torch's global generator (seeded per step by the loop), held-aside ones from the index, so
every evaluation sees the same pairs. Flat crops are drawn again as in the blur dataset.
Research only, as the photos are (BSD68, Sun-Hays 80, Urban100).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trainer.data import Sample, Split, register_dataset
from trainer.data.blur import (
    NATURAL_PHOTOS,
    load_photos,
    photo_names,
    textured_crop,
)
from trainer.data.degradations import REALESRGAN_X4PLUS, DegradationSettings, degrade
from trainer.data.sampling import sample_seed

SCALE = 4
VAL_SEED = 20210801  # the held-aside pairs' seeds: (VAL_SEED, index)


@dataclass(frozen=True)
class Degradation:
    """How LR is made from an HR crop: PIL bicubic, or Real-ESRGAN's pipeline."""

    kind: str  # "bicubic" or "realesrgan"
    settings: DegradationSettings = REALESRGAN_X4PLUS


class SuperResolutionPhotos:
    """HR crops of photos and the LR images degraded from them.

    Args:
        root: the photo folder.
        names: its photos (relative paths) this dataset draws from.
        size: the HR crop side (a multiple of 4).
        held_aside: seed pairs by index (fixed evaluation pairs) instead of by draw.
        degradation: how LR is made.
    """

    def __init__(
        self,
        root: Path,
        names: Sequence[str],
        size: int,
        held_aside: bool,
        degradation: Degradation,
    ) -> None:
        if not names:
            raise FileNotFoundError(f"no photos under {root}")
        if size % SCALE:
            raise ValueError(f"the HR crop ({size}) must be a multiple of {SCALE}")
        self.names = list(names)
        self.size = size
        self.held_aside = held_aside
        self.degradation = degradation
        self.photos = load_photos(root, tuple(names))
        if small := [n for n, p in zip(names, self.photos, strict=True) if min(p.shape[:2]) < size]:
            raise ValueError(f"photos smaller than the {size} px crop: {small[:3]}")

    def __len__(self) -> int:
        return len(self.names)

    def pair(self, index: int, seed: int, flip: bool = False) -> Sample:
        """The pair of photo ``index`` made with ``seed`` (a pure function of the three)."""
        rng = np.random.default_rng(seed)
        region = textured_crop(self.photos[index], self.size, rng)
        if flip:
            region = region[:, ::-1]
        region = np.ascontiguousarray(region)
        hr = torch.from_numpy(region.transpose(2, 0, 1).copy()).float() / 255
        if self.degradation.kind == "bicubic":
            small = self.size // SCALE
            lr_image = Image.fromarray(region).resize((small, small), Image.Resampling.BICUBIC)
            lr = torch.from_numpy(np.asarray(lr_image).transpose(2, 0, 1).copy()).float() / 255
        else:
            lr = degrade(hr, rng, self.degradation.settings)
        return {"lr": lr * 2 - 1, "hr": hr * 2 - 1}

    def seed(self, index: int) -> int:
        """The seed of the next sample of ``index`` (:func:`~trainer.data.sampling.sample_seed`)."""
        return sample_seed(index, VAL_SEED if self.held_aside else None)

    def sample(self, index: int, flip: bool = False) -> Sample:
        return self.pair(index, self.seed(index), flip)


def superres_photos(
    root: Path, split: Split, size: int, degradation: Degradation
) -> SuperResolutionPhotos:
    """Photos under ``root`` (any folder of .png / .jpg) as LR/HR pairs, split by name."""
    names = photo_names(root, split)
    return SuperResolutionPhotos(root, names, size, split == "val", degradation)


@register_dataset("bicubic_x4_photos", NATURAL_PHOTOS)
def bicubic_x4_photos(root: Path, split: Split, size: int) -> SuperResolutionPhotos:
    """Natural photos (research only), LR by x4 bicubic downscaling."""
    return superres_photos(root, split, size, Degradation("bicubic"))


@register_dataset("realesrgan_x4_photos", NATURAL_PHOTOS)
def realesrgan_x4_photos(root: Path, split: Split, size: int) -> SuperResolutionPhotos:
    """Natural photos (research only), LR by Real-ESRGAN's second-order degradations."""
    return superres_photos(root, split, size, Degradation("realesrgan"))
