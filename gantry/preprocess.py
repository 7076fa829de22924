"""Turning RGB pixels into a network's input, as its model card says.

Shared by the export parity gate (trainer) and the gateway, so both feed a network the same
way. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gantry.cards import ModelCard


def normalise(rgb: NDArray[Any], card: ModelCard) -> NDArray[np.float32]:
    """HxWx3 or NxHxWx3 uint8 RGB → CHW / NCHW float32 as the card's network expects.

    Colour order, value range, mean and standard deviation all come from the card.
    """
    x = rgb.astype(np.float32)
    if card.color_order == "BGR":
        x = x[..., ::-1]
    lo, hi = card.value_range
    if (lo, hi) != (0.0, 255.0):
        x = lo + (hi - lo) * x / 255.0
    x = (x - np.asarray(card.mean, np.float32)) / np.asarray(card.std, np.float32)
    axes = (2, 0, 1) if x.ndim == 3 else (0, 3, 1, 2)
    return np.ascontiguousarray(x.transpose(axes), dtype=np.float32)
