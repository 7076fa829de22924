"""Landmark crops: the square around each detected box a landmark net reads, and its answer
mapped back to input pixels.

A landmark card (:class:`~gantry.core.cards.LandmarksSpec`) says how large the square is
(``crop_scale`` times the box's longer side, centred on the box) and answers each point
relative to it; the crop is cut by one affine warp per face (black outside the image, as
face-api.js pads its crops) so faces at the border keep their geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Box = tuple[float, float, float, float]


def crop_squares(boxes: Sequence[Box], scale: float) -> NDArray[np.float64]:
    """``(K, 3)`` rows ``(x0, y0, side)``: each box's crop square in input pixels."""
    squares = np.zeros((len(boxes), 3), np.float64)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        side = max(x2 - x1, y2 - y1, 1.0) * scale
        squares[k] = ((x1 + x2 - side) / 2, (y1 + y2 - side) / 2, side)
    return squares


def cut_crops(
    image: NDArray[Any], squares: NDArray[np.float64], size: tuple[int, int]
) -> NDArray[Any]:
    """``(K, H, W, C)`` crops of ``image``: each square resized to ``size`` (bilinear, pixel
    centres mapped as ``cv2.resize`` does), black outside the image."""
    height, width = size
    out = np.zeros((len(squares), height, width, *image.shape[2:]), image.dtype)
    for k, (x0, y0, side) in enumerate(squares):
        sx, sy = width / side, height / side
        # Pixel i covers [i, i + 1): output pixel u's centre u + 0.5 samples the input at
        # x0 + (u + 0.5) / sx, i.e. input pixel index x0 + (u + 0.5) / sx - 0.5.
        matrix = np.array(
            [[sx, 0.0, 0.5 * sx - 0.5 - sx * x0], [0.0, sy, 0.5 * sy - 0.5 - sy * y0]]
        )
        out[k] = cv2.warpAffine(
            image,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0.0, 0.0, 0.0, 0.0),
        )
    return out


def to_image_points(relative: NDArray[Any], squares: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(K, P, 2)`` points relative to their crop squares → input pixels (the same
    continuous coordinates as the squares: pixel i covers [i, i + 1))."""
    points = np.asarray(relative, np.float64)
    return squares[:, None, :2] + points * squares[:, None, 2:3]
