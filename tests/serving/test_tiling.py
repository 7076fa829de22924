from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from gantry.serving.tiling import Blender, crop_window, plan_tiles, window_weights


def _nearest(window: NDArray[Any], scale: int) -> NDArray[Any]:
    return window.repeat(scale, axis=1).repeat(scale, axis=2)


@pytest.mark.parametrize(("h", "w"), [(37, 53), (128, 128), (129, 300), (20, 500)])
def test_windows_cover_the_image_and_share_one_shape(h: int, w: int) -> None:
    plan = plan_tiles(h, w, tile=48, pad=6)
    covered = np.zeros((h, w), bool)
    for y, x in plan.origins():
        window = crop_window(np.zeros((3, h, w)), plan, y, x)
        assert window.shape == (3, plan.window_h, plan.window_w)
        covered[y : y + plan.window_h, x : x + plan.window_w] = True
    assert covered.all()


def test_adjacent_windows_overlap_by_twice_the_pad() -> None:
    plan = plan_tiles(200, 200, tile=64, pad=8)
    assert plan.ys[1] - plan.ys[0] == 64 - 16
    assert plan.ys[-1] == 200 - 64


def test_position_independent_model_is_reproduced_exactly() -> None:
    # For a pixel-wise model every window gives the same value at a pixel, so blending must
    # return exactly the whole-image output: weights are a partition of unity after division.
    rng = np.random.default_rng(0)
    image = rng.random((3, 90, 130), np.float32)
    plan = plan_tiles(90, 130, tile=40, pad=5)
    blender = Blender(plan, 3, scale=2)
    for y, x in plan.origins():
        blender.add(y, x, _nearest(crop_window(image, plan, y, x), 2))
    np.testing.assert_allclose(blender.result(), _nearest(image, 2), atol=1e-6)


def test_weights_fade_only_inside_the_image() -> None:
    plan = plan_tiles(100, 100, tile=40, pad=5)
    first = window_weights(plan, 0, 0, scale=1)
    assert first[0, 0] == 1.0  # image corner: nothing else covers it
    assert first[-1, -1] < 0.1  # interior edge: the neighbour takes over
    middle = window_weights(plan, plan.ys[1], plan.xs[1], scale=1)
    assert middle[0, 20] < 0.1 and middle[20, 20] == 1.0


def test_whole_image_when_tile_is_zero_or_larger() -> None:
    assert plan_tiles(50, 60, tile=0, pad=4).count == 1
    assert plan_tiles(50, 60, tile=64, pad=4).count == 1


def test_tile_must_exceed_twice_the_pad() -> None:
    with pytest.raises(ValueError, match="twice the pad"):
        plan_tiles(100, 100, tile=16, pad=8)
