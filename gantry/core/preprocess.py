"""Between pixels and tensors, as the model card says.

Shared by the export parity gate (trainer) and the serving pipelines, so both feed a network
the same way. numpy and Pillow only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from gantry.core.cards import ModelCard


def normalise(rgb: NDArray[Any], card: ModelCard, *, white: float = 255.0) -> NDArray[np.float32]:
    """HxWx3 or NxHxWx3 RGB → CHW / NCHW float32 as the card's network expects.

    Colour order, value range, mean and standard deviation all come from the card.

    Args:
        rgb: pixels, 8-bit (``white=255``) or already scaled to [0, 1] (``white=1``).
        card: the model's card.
        white: the value of a white pixel in ``rgb``.
    """
    x = rgb.astype(np.float32)
    if card.color_order == "BGR":
        x = x[..., ::-1]
    lo, hi = card.value_range
    if (lo, hi) != (0.0, white):
        x = lo + (hi - lo) * x / white
    x = (x - np.asarray(card.mean, np.float32)) / np.asarray(card.std, np.float32)
    axes = (2, 0, 1) if x.ndim == 3 else (0, 3, 1, 2)
    return np.ascontiguousarray(x.transpose(axes), dtype=np.float32)


def face_square(rgb: NDArray[np.uint8], side: int) -> NDArray[np.uint8]:
    """An aligned face photo's centre square, resized (bicubic) to ``side`` x ``side``.

    The cut of CelebA's aligned faces that the face-editing models trained on
    (:func:`trainer.data.unpaired.load_face`): the square of the shorter side, in the middle.
    """
    h, w = rgb.shape[:2]
    short = min(h, w)
    top, left = (h - short) // 2, (w - short) // 2
    square = Image.fromarray(rgb[top : top + short, left : left + short])
    return np.asarray(square.resize((side, side), Image.Resampling.BICUBIC))


def to_unit_range(chw: NDArray[Any], output_range: tuple[float, float]) -> NDArray[np.float32]:
    """A network's image output (CHW / NCHW, values in ``output_range``) rescaled to [0, 1].

    Values just outside the range (a super-resolution net overshoots at edges) are left for
    the encoder to clip.
    """
    lo, hi = output_range
    x = np.asarray(chw, np.float32)
    if (lo, hi) != (0.0, 1.0):
        x = (x - np.float32(lo)) / np.float32(hi - lo)
    return x


def normalise_grey(grey: NDArray[np.uint8], card: ModelCard) -> NDArray[np.float32]:
    """HxW or NxHxW 8-bit grey → 1xHxW / Nx1xHxW float32 in the card's value range, less its
    (first channel's) mean, over its standard deviation (a grey network's input)."""
    lo, hi = card.value_range
    x = lo + (hi - lo) * grey.astype(np.float32) / 255.0
    x = (x - card.mean[0]) / card.std[0]
    return np.ascontiguousarray(x[..., None, :, :], dtype=np.float32)
