from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from gantry.serving.faces.boxes import (
    box_areas,
    clip_boxes,
    iou,
    nms,
    pad_boxes_to_image,
    square_boxes,
)


def _random_boxes(rng: np.random.Generator, n: int, extent: float = 100.0) -> NDArray[Any]:
    corners = rng.uniform(0, extent, size=(n, 2))
    sizes = rng.uniform(1, extent / 3, size=(n, 2))
    return np.concatenate([corners, corners + sizes], axis=1)


def _overlap_reference(a: NDArray[Any], b: NDArray[Any], mode: str, plus_one: bool) -> float:
    # Scalar, one pair at a time: deliberately the most literal reading of the definition.
    off = 1.0 if plus_one else 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + off)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + off)
    inter = iw * ih
    area_a = (a[2] - a[0] + off) * (a[3] - a[1] + off)
    area_b = (b[2] - b[0] + off) * (b[3] - b[1] + off)
    if mode == "min":
        return float(inter / min(area_a, area_b))
    return float(inter / (area_a + area_b - inter))


def _nms_reference(
    boxes: NDArray[Any], scores: NDArray[Any], threshold: float, mode: str, plus_one: bool
) -> list[int]:
    remaining = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in remaining:
        if all(_overlap_reference(boxes[i], boxes[j], mode, plus_one) <= threshold for j in kept):
            kept.append(i)
    return kept


def test_iou_hand_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    # 5x5 overlap of two 10x10 squares: 25 / (100 + 100 - 25).
    expected = np.array([[25 / 175, 1.0, 0.0], [0.0, 4 / 100, 0.0]])
    np.testing.assert_allclose(iou(a, b), expected)
    # Inclusive pixels: 11x11 squares overlapping 6x6.
    assert iou(a[:1], b[:1], plus_one=True)[0, 0] == pytest.approx(36 / (121 + 121 - 36))


def test_iou_matches_scalar_reference() -> None:
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 17), _random_boxes(rng, 9)
    expected = [[_overlap_reference(x, y, "union", False) for y in b] for x in a]
    np.testing.assert_allclose(iou(a, b), expected, rtol=1e-12)


@pytest.mark.parametrize("mode", ["union", "min"])
@pytest.mark.parametrize("plus_one", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force(mode: Any, plus_one: bool, threshold: float) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        boxes = _random_boxes(rng, 120)
        scores = rng.random(120)
        got = nms(boxes, scores, threshold, mode=mode, plus_one=plus_one)
        assert got.dtype == np.intp
        assert got.tolist() == _nms_reference(boxes, scores, threshold, mode, plus_one)


def test_nms_min_mode_suppresses_nested_box_that_union_keeps() -> None:
    boxes = np.array([[0, 0, 100, 100], [10, 10, 40, 40]], float)
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 0.7).tolist() == [0, 1]  # IoU 0.09
    assert nms(boxes, scores, 0.7, mode="min").tolist() == [0]  # nested: overlap 1


def test_nms_order_ties_limit_and_empty() -> None:
    boxes = np.array([[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]], float)
    assert nms(boxes, np.array([0.2, 0.9, 0.5]), 0.5).tolist() == [1, 2, 0]
    assert nms(boxes, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0, 1, 2]
    assert nms(boxes, np.array([0.2, 0.9, 0.5]), 0.5, max_output=2).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    with pytest.raises(ValueError, match="scores"):
        nms(boxes, np.zeros(2), 0.5)


def test_nms_keeps_degenerate_boxes_instead_of_dividing_by_zero() -> None:
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5]], float)
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]


def test_areas_clip_and_square() -> None:
    boxes = np.array([[0, 0, 4, 2], [3, 3, 1, 1]], float)
    np.testing.assert_array_equal(box_areas(boxes), [8, 0])
    np.testing.assert_array_equal(box_areas(boxes, plus_one=True), [15, 0])
    np.testing.assert_array_equal(
        clip_boxes(np.array([[-5, -1, 50, 8]], float), 10, 20), [[0, 0, 20, 8]]
    )
    # rerec: 10 wide, 4 tall around centre (15, 22) -> a 10x10 square around the same centre.
    np.testing.assert_array_equal(
        square_boxes(np.array([[10, 20, 20, 24]], float)), [[10, 17, 20, 27]]
    )
    np.testing.assert_array_equal(square_boxes(np.array([[0, 0, 2, 6]], float)), [[-2, 0, 4, 6]])


def test_pad_boxes_to_image_splits_overhang() -> None:
    windows = np.array([[-3, 2, 5, 12], [8, 8, 10, 10], [20, 20, 30, 30]])
    padded = pad_boxes_to_image(windows, height=10, width=10)
    np.testing.assert_array_equal(padded.source, [[0, 2, 5, 10], [8, 8, 10, 10], [10, 10, 10, 10]])
    np.testing.assert_array_equal(padded.target, [[3, 0, 8, 8], [0, 0, 2, 2], [0, 0, 0, 0]])
    np.testing.assert_array_equal(padded.size, [[10, 8], [2, 2], [10, 10]])
