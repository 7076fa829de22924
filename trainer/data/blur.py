"""Blurred/sharp pairs made from sharp photos with random camera-shake kernels (DeblurGAN).

DeblurGAN (Kupyn et al. 2018, section 3.2, ``motion_blur/`` of KupynOrest/DeblurGAN) makes
its synthetic training pairs after Boracchi and Foi (2012): a random camera trajectory is
sampled as a particle moving in the continuous plane, then rasterised into a blur kernel.

**Trajectory** (:func:`random_trajectory`): ``iters`` positions of a particle whose speed is
fixed, so every trajectory of one exposure has the same length ``max_len``. At each step its
velocity gets a Gaussian perturbation (scaled by ``gaussian_shake``), an inertial pull back
towards the start (``centripetal``, proportional to the position), and, with a small
probability, an impulsive shake that turns it about (mimicking the press of the shutter
button or a correction of the shake); it is then renormalised to the fixed speed. The three
strengths and the initial direction are drawn per trajectory, as upstream draws them; the
anxiety ``expl`` scales the perturbations (upstream's training set draws it from
:data:`ANXIETIES`).

**Kernel** (:func:`rasterise`): the trajectory is shifted into a ``canvas`` x ``canvas``
grid (centred by its bounding box), and each position spreads its weight over the four
pixels around it by bilinear (triangle) interpolation, so sub-pixel motion makes a smooth
kernel. Only the first ``exposure`` share of the trajectory is used (upstream blurs with one
of the shares 1/10, 1/2 or 1, :data:`EXPOSURES`); the kernel is normalised to sum to 1, so a
blurred image keeps its brightness (upstream min-max normalises the blurred image instead).

**Pairs** (:class:`MotionBlurPhotos`): a random crop of a photo at its own resolution, grown
by the kernel's size, is blurred with the kernel by a *valid* convolution (every blurred
pixel mixes real pixels of the photo, no padding), rounded to 8 bits as a real blurred photo
is, and paired with the sharp crop's centre. A crop with almost no contrast (a clear sky:
nothing to deblur, and an infinite PSNR) is drawn again, up to :data:`CROP_TRIES` times.
DeblurGAN's kernels (canvas 64, length 60) are sized for 256-pixel crops; here both scale
with the crop size (:func:`kernel_geometry`).

**Randomness.** A pair is a pure function of ``(photo index, seed, flip)``
(:meth:`MotionBlurPhotos.pair`). Training samples draw their seed from torch's global
generator, which the training loop seeds from ``(seed, step, rank)`` right before a batch is
drawn, so a run is deterministic and a resumed run draws the same pairs; each draw of a photo
gets a new crop and kernel. Held-aside pairs are seeded by their index alone: the same pairs
for every run and evaluation.

**Split.** The held-aside photos are fixed by file name (the SHA-256 of the relative path,
one in :data:`VAL_EVERY`), never trained on, and stay held aside if photos are added.
``../shared/data/train/natural_photos_sr`` holds BSD68 (non-commercial research use), Sun-
Hays 80 and Urban100 (research use): models trained on it are research only.
"""

from __future__ import annotations

import cmath
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image

from trainer.data import Sample, Split, register_dataset
from trainer.data.sampling import sample_seed

NATURAL_PHOTOS = Path("train") / "natural_photos_sr"
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")
VAL_EVERY = 8  # one photo in eight (by the hash of its name) is held aside
VAL_SEED = 20180601  # the held-aside pairs' seeds: (VAL_SEED, index)
MIN_CROP_STD = 8.0  # grey levels: crops flatter than this are drawn again ...
CROP_TRIES = 10  # ... up to this many times

# Upstream's generator (motion_blur/generate_trajectory.py, blur_image.py's __main__).
TRAJECTORY_ITERS = 2000
ANXIETIES = (0.01, 0.009, 0.008, 0.007, 0.005, 0.003)
EXPOSURES = (0.1, 0.5, 1.0)  # the shares of the trajectory a kernel integrates
# Upstream's kernels are 64 px canvases of 60 px trajectories for 256 px training crops.
REFERENCE_CROP = 256
REFERENCE_LENGTH = 60


@dataclass(frozen=True)
class KernelGeometry:
    """Trajectory length and kernel side (odd, so the kernel has a centre pixel)."""

    max_len: float
    canvas: int


def kernel_geometry(crop: int) -> KernelGeometry:
    """DeblurGAN's kernel geometry scaled from its 256 px crops to ``crop`` pixels.

    The canvas leaves room for the longest (straight) trajectory and the bilinear spread.
    """
    max_len = REFERENCE_LENGTH * crop / REFERENCE_CROP
    canvas = math.ceil(max_len) + 4
    return KernelGeometry(max_len, canvas + 1 - canvas % 2)


def random_trajectory(
    rng: np.random.Generator,
    *,
    max_len: float,
    expl: float,
    iters: int = TRAJECTORY_ITERS,
) -> NDArray[np.complex128]:
    """A random camera trajectory (Boracchi and Foi 2012), as complex positions.

    Args:
        rng: the source of every random number.
        max_len: the trajectory's length (the particle's fixed speed times ``iters - 1``).
        expl: the anxiety: the scale of the Gaussian and impulsive perturbations (> 0).
        iters: positions sampled.

    Returns:
        (iters,) positions, starting at 0.
    """
    if expl <= 0 or max_len <= 0 or iters < 2:
        raise ValueError("a trajectory needs expl > 0, max_len > 0 and at least 2 positions")
    centripetal = 0.7 * rng.uniform()
    prob_big_shake = 0.2 * rng.uniform()
    gaussian_shake = 10 * rng.uniform()
    speed = max_len / (iters - 1)
    v = cmath.exp(1j * 2 * math.pi * rng.uniform()) * expl
    # Every draw up front (vectorised), then a plain-Python loop: the walk is sequential.
    shakes = (rng.uniform(size=iters - 1) < prob_big_shake * expl).tolist()
    turns = (rng.uniform(size=iters - 1) - 0.5).tolist()
    noise = rng.standard_normal((iters - 1, 2)).tolist()
    x = [0j] * iters
    for t in range(iters - 1):
        # An impulsive shake pushes the velocity roughly backwards (turned by pi +- 0.5).
        shake = 2 * v * cmath.exp(1j * (math.pi + turns[t])) if shakes[t] else 0j
        gaussian = complex(noise[t][0], noise[t][1])
        v += shake + expl * (gaussian_shake * gaussian - centripetal * x[t]) * speed
        v = v / abs(v) * speed
        x[t + 1] = x[t] + v
    return np.asarray(x)


def rasterise(trajectory: NDArray[np.complex128], canvas: int, exposure: float) -> NDArray[Any]:
    """The blur kernel of the first ``exposure`` share of a trajectory.

    Args:
        trajectory: positions (complex: x + iy, in pixels) from :func:`random_trajectory`.
        canvas: the kernel's side; the trajectory must fit inside with a pixel to spare.
        exposure: the share of the trajectory integrated, in (0, 1].

    Returns:
        (canvas, canvas) float64 kernel, non-negative, summing to 1; rows are y.
    """
    if not 0 < exposure <= 1:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    x = trajectory - complex(trajectory.real.min(), trajectory.imag.min())
    # Upstream: keep the start's sub-pixel phase, leave a one-pixel margin, centre the box.
    x = x - complex(x[0].real % 1.0, x[0].imag % 1.0) + (1 + 1j)
    x = x + complex(math.ceil((canvas - x.real.max()) / 2), math.ceil((canvas - x.imag.max()) / 2))
    n = len(x)
    # Position t is exposed fully up to exposure * n, the one straddling it in part.
    weights = np.clip(exposure * n - np.arange(n) + 1, 0.0, 1.0)
    col = np.clip(np.floor(x.real).astype(np.int64), 0, canvas - 2)
    row = np.clip(np.floor(x.imag).astype(np.int64), 0, canvas - 2)
    kernel = np.zeros((canvas, canvas))
    for dr in (0, 1):
        for dc in (0, 1):
            # Triangle (bilinear) weights of the neighbouring pixel (row + dr, col + dc).
            wy = np.maximum(0.0, 1 - np.abs(x.imag - (row + dr)))
            wx = np.maximum(0.0, 1 - np.abs(x.real - (col + dc)))
            np.add.at(kernel, (row + dr, col + dc), weights * wx * wy)
    return kernel / kernel.sum()


def random_kernel(rng: np.random.Generator, geometry: KernelGeometry) -> NDArray[Any]:
    """One training kernel: an anxiety and an exposure drawn as upstream's set draws them."""
    expl = float(rng.choice(ANXIETIES))
    exposure = float(rng.choice(EXPOSURES))
    trajectory = random_trajectory(rng, max_len=geometry.max_len, expl=expl)
    return rasterise(trajectory, geometry.canvas, exposure)


def blur_valid(image: NDArray[np.uint8], kernel: NDArray[Any]) -> NDArray[np.float32]:
    """(H, W, 3) uint8 convolved with a (k, k) kernel, valid part only: (H-k+1, W-k+1, 3)."""
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()[:, None]
    # conv2d correlates; a convolution correlates with the flipped kernel.
    weight = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1])).float()[None, None]
    out = F.conv2d(x, weight)[:, 0]
    return out.numpy().transpose(1, 2, 0)


def _to_tensor(image: NDArray[np.float32] | NDArray[np.uint8]) -> torch.Tensor:
    """(H, W, 3) 0..255 → (3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 127.5 - 1


def textured_crop(
    photo: NDArray[np.uint8], side: int, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """A random ``side`` x ``side`` crop of ``photo``, drawn again (up to :data:`CROP_TRIES`
    times) while it is flat (clear or blown-out sky: nothing to deblur, fill or restore)."""
    region = photo[:side, :side]
    for _ in range(CROP_TRIES):
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        region = photo[top : top + side, left : left + side]
        if float(region.std()) >= MIN_CROP_STD:
            break
    return region


def is_held_aside(name: str) -> bool:
    """Whether the photo ``name`` (its path under the folder) is held aside."""
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % VAL_EVERY == 0


def photo_names(root: Path, split: Split) -> list[str]:
    """The photos of ``split`` under ``root``, as sorted relative paths."""
    names = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
    )
    return [n for n in names if is_held_aside(n) == (split == "val")]


@functools.lru_cache(maxsize=4)
def load_photos(root: Path, names: tuple[str, ...]) -> tuple[NDArray[np.uint8], ...]:
    """The photos ``names`` under ``root`` as RGB uint8 arrays, decoded once per process
    (tests and evaluations build the datasets of these photos many times)."""
    photos = []
    for name in names:
        with Image.open(root / name) as im:
            photos.append(np.asarray(im.convert("RGB")))
    return tuple(photos)


class MotionBlurPhotos:
    """Sharp photos and their synthetic camera-shake blur: ``{"blurred", "sharp"}`` pairs.

    Both are (3, size, size) in [-1, 1]; see the module docstring for how a pair is made and
    seeded.

    Args:
        root: the photo folder.
        names: its photos (relative paths) this dataset draws from.
        size: the crop side.
        held_aside: seed pairs by index (fixed evaluation pairs) instead of by draw.
    """

    def __init__(self, root: Path, names: Sequence[str], size: int, held_aside: bool) -> None:
        if not names:
            raise FileNotFoundError(f"no photos under {root}")
        self.names = list(names)
        self.size = size
        self.held_aside = held_aside
        self.geometry = kernel_geometry(size)
        self.photos = load_photos(root, tuple(names))
        need = size + self.geometry.canvas - 1
        if small := [n for n, p in zip(names, self.photos, strict=True) if min(p.shape[:2]) < need]:
            raise ValueError(f"photos smaller than {need} px for {size} px crops: {small[:3]}")

    def __len__(self) -> int:
        return len(self.names)

    def pair(self, index: int, seed: int, flip: bool = False) -> Sample:
        """The pair of photo ``index`` made with ``seed`` (a pure function of the three)."""
        rng = np.random.default_rng(seed)
        photo = self.photos[index]
        k = self.geometry.canvas
        side = self.size + k - 1
        region = textured_crop(photo, side, rng)
        if flip:
            region = region[:, ::-1]
        kernel = random_kernel(rng, self.geometry)
        blurred = np.clip(np.floor(blur_valid(region, kernel) + 0.5), 0, 255)
        c = (k - 1) // 2  # the kernel's centre: output pixel (i, j) is centred on (i+c, j+c)
        sharp = region[c : c + self.size, c : c + self.size]
        return {"blurred": _to_tensor(blurred), "sharp": _to_tensor(sharp)}

    def seed(self, index: int) -> int:
        """The seed of the next sample of ``index`` (:func:`~trainer.data.sampling.sample_seed`)."""
        return sample_seed(index, VAL_SEED if self.held_aside else None)

    def sample(self, index: int, flip: bool = False) -> Sample:
        return self.pair(index, self.seed(index), flip)


@register_dataset("motion_blur_photos", NATURAL_PHOTOS)
def motion_blur_photos(root: Path, split: Split, size: int) -> MotionBlurPhotos:
    """Natural photos (research only) blurred by random camera shake: ``train`` / ``val``
    split by file name (about one photo in eight held aside)."""
    return MotionBlurPhotos(root, photo_names(root, split), size, held_aside=split == "val")
