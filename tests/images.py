"""Network inputs made from files the way the gateway makes them, for comparisons."""

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from gantry.core.preprocess import face_square


def aligned_face(path: Path, side: int = 64) -> NDArray[np.float32]:
    """The file's centre square at ``side`` px, CHW in [-1, 1], as the gateway cuts a face
    for face_edit and style_translation models."""
    rgb = face_square(np.asarray(Image.open(path).convert("RGB")), side)
    return (rgb / 255.0 * 2.0 - 1.0).transpose(2, 0, 1).astype(np.float32)
