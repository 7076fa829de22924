"""Landmark crops: the square around each face box a landmark (or frontalization) net reads,
its answer mapped back to input pixels, and the five alignment points of 68. Shared by the
serving path and the trainer, so training crops are cut exactly as served ones.

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

# The detector's five points (left eye, right eye, nose, left and right mouth corners, as seen
# in the image) from the 68 of the iBUG scheme: the eye centres, the nose tip, the outer mouth
# corners; what ``align=<landmark model>`` aligns embedder chips with.
IBUG68_EYES = (range(36, 42), range(42, 48))
IBUG68_NOSE_TIP = 30
IBUG68_MOUTH_CORNERS = (48, 54)
FIVE_POINT_SCHEMES = ("ibug68",)


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


def five_points(points: NDArray[Any], scheme: str) -> NDArray[np.float64]:
    """``(K, 5, 2)`` template points from ``(K, P, 2)`` landmarks of ``scheme``.

    Raises:
        ValueError: the scheme is not one of :data:`FIVE_POINT_SCHEMES`.
    """
    if scheme not in FIVE_POINT_SCHEMES:
        raise ValueError(f"no five-point mapping for landmark scheme {scheme!r}")
    p = np.asarray(points, np.float64)
    left, right = (p[:, list(eye)].mean(axis=1) for eye in IBUG68_EYES)
    mouth_left, mouth_right = (p[:, i] for i in IBUG68_MOUTH_CORNERS)
    return np.stack([left, right, p[:, IBUG68_NOSE_TIP], mouth_left, mouth_right], axis=1)
