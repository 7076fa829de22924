"""Inpainting's mask rules and the region of the image that runs (no model needed)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from gantry.core.errors import InvalidInput
from gantry.core.imaging import DecodedImage, decode_image
from gantry.serving.inpaint import hole_region, read_mask


def _decoded(pixels: NDArray[np.uint8] | NDArray[np.uint16]) -> DecodedImage:
    if pixels.dtype == np.uint16:  # Pillow writes no 16-bit PNG from an array
        ok, encoded = cv2.imencode(".png", pixels)
        assert ok
        return decode_image(encoded.tobytes(), max_pixels=10**7)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return decode_image(buffer.getvalue(), max_pixels=10**7)


def test_a_binary_mask_of_the_images_size_gives_its_white_pixels() -> None:
    grey = np.zeros((20, 30), np.uint8)
    grey[5:9, 10:20] = 255
    hole = read_mask(_decoded(grey), 20, 30)
    assert hole.dtype == np.bool_ and hole.shape == (20, 30)
    assert np.array_equal(hole, grey == 255)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(read_mask(_decoded(rgb), 20, 30), hole)
    deep = (grey.astype(np.uint16) * 257).astype(np.uint16)  # 16-bit white is 65535
    decoded = _decoded(deep)
    assert decoded.bit_depth == 16
    assert np.array_equal(read_mask(decoded, 20, 30), hole)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ((slice(0, 1), slice(0, 1), 128), "invalid_mask"),  # a grey pixel (anti-aliasing)
        ((slice(0, 1), slice(0, 1), (255, 0, 0)), "invalid_mask"),  # a colour
        (None, "empty_mask"),
    ],
)
def test_a_grey_coloured_or_empty_mask_is_refused(
    change: tuple[slice, slice, object] | None, code: str
) -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    if change is not None:
        rows, cols, value = change
        rgb[rows, cols] = value
    with pytest.raises(InvalidInput) as caught:
        read_mask(_decoded(rgb), 8, 8)
    assert caught.value.code == code


def test_a_mask_of_another_size_is_refused() -> None:
    mask = np.full((8, 9), 255, np.uint8)
    with pytest.raises(InvalidInput, match="9x8, the image 8x8") as caught:
        read_mask(_decoded(mask), 8, 8)
    assert caught.value.code == "mask_size_mismatch"


def test_the_region_is_the_holes_box_with_context_on_the_grid_and_clipped() -> None:
    hole = np.zeros((500, 700), bool)
    hole[250:260, 300:330] = True
    region = hole_region(hole, context=156, multiple=4)
    # 250 - 156 = 94 → 92 on the grid; 300 - 156 = 144; the far sides + 156, unclipped.
    assert (region.top, region.left, region.bottom, region.right) == (92, 144, 416, 486)
    assert (region.height, region.width) == (324, 342)
    assert region.of(hole).sum() == hole.sum()
    corner = np.zeros((500, 700), bool)
    corner[0:5, 690:700] = True
    clipped = hole_region(corner, context=156, multiple=4)
    assert (clipped.top, clipped.left, clipped.bottom, clipped.right) == (0, 532, 161, 700)
