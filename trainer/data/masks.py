"""Random holes for inpainting: rectangles as GLCIC trains with, and free-form strokes.

Every hole lies inside a *local patch*, the square the local discriminator judges. GLCIC
(Iizuka et al. 2017, section 3.3) trains on 256 px images with a 128 px local patch and
rectangular holes of sides drawn in [96, 128] px inside it; :func:`hole_geometry` keeps
those ratios at any crop size (a half-size patch, sides from 3/8 to 1/2 of the crop).

Free-form holes (:func:`random_free_form`) are brush strokes as in the free-form masks of
DeepFill v2 (Yu et al. 2019): a few strokes, each a polyline of random segments (a random
angle and length per segment) drawn with a random brush width and round joints, clipped to
the local patch. They train the network for the masks users paint, not only boxes.

A hole is a pure function of the ``numpy`` generator passed in, so the dataset decides the
seeding (see :mod:`trainer.data.inpainting`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

# GLCIC's 256 px images, 128 px local patches, holes of sides in [96, 128] px.
LOCAL_SHARE = 0.5
HOLE_SHARES = (96 / 256, 128 / 256)
FREE_FORM_SHARE = 0.5  # the share of free-form holes (the rest are rectangles)
STROKES = (1, 4)  # strokes per free-form hole, inclusive
VERTICES = (2, 6)  # segments per stroke, inclusive
# Segment lengths and brush widths as shares of the local patch's side.
SEGMENT_SHARES = (1 / 8, 1 / 2)
BRUSH_SHARES = (1 / 10, 1 / 5)


@dataclass(frozen=True)
class HoleGeometry:
    """Sizes of one crop's local patch and rectangular holes, in pixels."""

    size: int  # the crop's side
    local: int  # the local patch's side
    hole_min: int  # a rectangle's shortest side ...
    hole_max: int  # ... and longest


def hole_geometry(size: int) -> HoleGeometry:
    """GLCIC's patch and hole sizes scaled from its 256 px images to ``size`` pixels."""
    local = max(4, round(size * LOCAL_SHARE))
    low, high = (max(1, round(size * share)) for share in HOLE_SHARES)
    return HoleGeometry(size, local, min(low, local), min(high, local))


@dataclass(frozen=True)
class Hole:
    """A binary mask (1 = fill) of the crop and the origin of its local patch."""

    mask: NDArray[np.float32]  # (size, size)
    top: int
    left: int


def _patch(rng: np.random.Generator, geometry: HoleGeometry) -> tuple[int, int]:
    span = geometry.size - geometry.local + 1
    return int(rng.integers(0, span)), int(rng.integers(0, span))


def random_rectangle(rng: np.random.Generator, geometry: HoleGeometry) -> Hole:
    """A rectangle of random sides in ``[hole_min, hole_max]`` at a random place inside a
    random local patch (GLCIC's training holes)."""
    top, left = _patch(rng, geometry)
    h, w = (int(rng.integers(geometry.hole_min, geometry.hole_max + 1)) for _ in range(2))
    y = top + int(rng.integers(0, geometry.local - h + 1))
    x = left + int(rng.integers(0, geometry.local - w + 1))
    mask = np.zeros((geometry.size, geometry.size), np.float32)
    mask[y : y + h, x : x + w] = 1
    return Hole(mask, top, left)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def random_free_form(rng: np.random.Generator, geometry: HoleGeometry) -> Hole:
    """Brush strokes (see the module docstring) inside a random local patch."""
    top, left = _patch(rng, geometry)
    side = geometry.local
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(STROKES[0], STROKES[1] + 1))):
        width = max(1, round(_uniform(rng, *BRUSH_SHARES) * side))
        points = [(_uniform(rng, 0, side), _uniform(rng, 0, side))]
        for _ in range(int(rng.integers(VERTICES[0], VERTICES[1] + 1))):
            angle = _uniform(rng, 0, 2 * math.pi)
            length = _uniform(rng, *SEGMENT_SHARES) * side
            x, y = points[-1]
            points.append(
                (
                    min(max(x + length * math.cos(angle), 0.0), side - 1.0),
                    min(max(y + length * math.sin(angle), 0.0), side - 1.0),
                )
            )
        draw.line(points, fill=255, width=width)
        r = width / 2
        for x, y in points:  # round joints and ends
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    mask = np.zeros((geometry.size, geometry.size), np.float32)
    mask[top : top + side, left : left + side] = np.asarray(canvas) > 127
    return Hole(mask, top, left)


def random_hole(
    rng: np.random.Generator, geometry: HoleGeometry, free_form_share: float = FREE_FORM_SHARE
) -> Hole:
    """A free-form hole with probability ``free_form_share``, else a rectangle."""
    if rng.uniform() < free_form_share:
        return random_free_form(rng, geometry)
    return random_rectangle(rng, geometry)
