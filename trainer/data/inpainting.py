"""Photos with random holes for inpainting (GLCIC): self-supervised, the photo is the truth.

A sample is a random square crop of a natural photo at its own resolution (a crop with
almost no contrast, a clear sky, is drawn again as :mod:`trainer.data.blur` does), a hole
inside a local patch of it (:mod:`trainer.data.masks`: a rectangle or free-form strokes),
and the patch's origin, for the local discriminator:

* ``image``: (3, S, S) in [-1, 1], the whole crop (the truth, hole included);
* ``mask``: (1, S, S), 1 inside the hole;
* ``patch``: (2,) int64, the local patch's (top, left).

**Randomness and split** are :mod:`trainer.data.blur`'s, with the same helpers: a sample is a
pure function of (photo index, seed, flip); training samples draw their seed from torch's
global generator (seeded by the loop per step, so a resumed run draws the same samples);
held-aside samples are seeded by their index alone. The held-aside photos are the same ones
the deblurring models never train on (:func:`~trainer.data.blur.is_held_aside`).
``../shared/data/train/natural_photos_sr`` is research-only data (BSD68, Sun-Hays 80,
Urban100): models trained on it are research only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from trainer.data import Sample, Split, register_dataset
from trainer.data.blur import NATURAL_PHOTOS, load_photos, photo_names, textured_crop
from trainer.data.masks import FREE_FORM_SHARE, hole_geometry, random_hole
from trainer.data.sampling import sample_seed

VAL_SEED = 20170720  # the held-aside samples' seeds: (VAL_SEED, index)


class HolePhotos:
    """Crops of photos with a random hole each: ``{"image", "mask", "patch"}`` samples.

    Args:
        root: the photo folder.
        names: its photos (relative paths) this dataset draws from.
        size: the crop side.
        held_aside: seed samples by index (fixed evaluation samples) instead of by draw.
        free_form_share: the share of free-form holes (the rest are rectangles).
    """

    def __init__(
        self,
        root: Path,
        names: Sequence[str],
        size: int,
        held_aside: bool,
        free_form_share: float = FREE_FORM_SHARE,
    ) -> None:
        if not names:
            raise FileNotFoundError(f"no photos under {root}")
        self.names = list(names)
        self.size = size
        self.held_aside = held_aside
        self.free_form_share = free_form_share
        self.geometry = hole_geometry(size)
        self.photos = load_photos(root, tuple(names))
        if small := [n for n, p in zip(names, self.photos, strict=True) if min(p.shape[:2]) < size]:
            raise ValueError(f"photos smaller than {size} px: {small[:3]}")

    def __len__(self) -> int:
        return len(self.names)

    def crop(self, index: int, seed: int, flip: bool = False) -> Sample:
        """The sample of photo ``index`` made with ``seed`` (a pure function of the three)."""
        rng = np.random.default_rng(seed)
        photo = self.photos[index]
        side = self.size
        region = textured_crop(photo, side, rng)
        if flip:
            region = region[:, ::-1]
        hole = random_hole(rng, self.geometry, self.free_form_share)
        image = torch.from_numpy(np.ascontiguousarray(region.transpose(2, 0, 1))).float()
        return {
            "image": image / 127.5 - 1,
            "mask": torch.from_numpy(hole.mask)[None],
            "patch": torch.tensor([hole.top, hole.left], dtype=torch.int64),
        }

    def seed(self, index: int) -> int:
        """The seed of the next sample of ``index`` (:func:`~trainer.data.sampling.sample_seed`)."""
        return sample_seed(index, VAL_SEED if self.held_aside else None)

    def sample(self, index: int, flip: bool = False) -> Sample:
        return self.crop(index, self.seed(index), flip)


@register_dataset("hole_photos", NATURAL_PHOTOS)
def hole_photos(root: Path, split: Split, size: int) -> HolePhotos:
    """Natural photos (research only) with random rectangle and free-form holes: ``train`` /
    ``val`` split by file name as the deblurring pairs are (one photo in eight held aside)."""
    return HolePhotos(root, photo_names(root, split), size, held_aside=split == "val")
