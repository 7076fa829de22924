import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from gantry.core.cards import DetectionSpec, PriorSpec
from gantry.serving.faces.retinaface import (
    decode_boxes,
    decode_landmarks,
    detect_from_outputs,
    prior_boxes,
    resize_for_detection,
)
from trainer.catalog import card

_SPEC = card("retinaface-mnet025").spec
assert isinstance(_SPEC, DetectionSpec)
CONFIG = _SPEC.priors  # the card's anchors, biubug6's cfg_mnet


def _priors_by_loops(height: int, width: int, config: PriorSpec) -> NDArray[np.float64]:
    # biubug6's PriorBox order spelled out one anchor at a time: level, row, column, size.
    rows = []
    for step, sizes in zip(config.steps, config.min_sizes, strict=True):
        for i in range(math.ceil(height / step)):
            for j in range(math.ceil(width / step)):
                for size in sizes:
                    cx, cy = (j + 0.5) * step / width, (i + 0.5) * step / height
                    rows.append([cx, cy, size / width, size / height])
    return np.array(rows)


def _encode_boxes(boxes: NDArray[Any], priors: NDArray[Any], variance: Any) -> NDArray[Any]:
    # The inverse of decode_boxes (biubug6's box_utils.encode for point-form boxes).
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate(
        [
            (centres - priors[:, :2]) / (variance[0] * priors[:, 2:]),
            np.log(sizes / priors[:, 2:]) / variance[1],
        ],
        axis=1,
    )


def _encode_landmarks(points: NDArray[Any], priors: NDArray[Any], variance: Any) -> NDArray[Any]:
    offsets = (points - priors[:, None, :2]) / (variance[0] * priors[:, None, 2:])
    return offsets.reshape(len(points), 10)


def test_prior_count_for_640x480() -> None:
    # Feature maps 80x60, 40x30 and 20x15, two anchor sizes each.
    assert (
        prior_boxes(480, 640, CONFIG).shape == ((80 * 60 + 40 * 30 + 20 * 15) * 2, 4) == (12600, 4)
    )


def test_prior_first_rows_follow_biubug6_order() -> None:
    priors = prior_boxes(480, 640, CONFIG)
    np.testing.assert_allclose(
        priors[:3],
        [
            [4 / 640, 4 / 480, 16 / 640, 16 / 480],
            [4 / 640, 4 / 480, 32 / 640, 32 / 480],
            [12 / 640, 4 / 480, 16 / 640, 16 / 480],
        ],
    )
    # The second level starts after all 80x60x2 first-level anchors.
    np.testing.assert_allclose(priors[9600], [8 / 640, 8 / 480, 64 / 640, 64 / 480])


@pytest.mark.parametrize(("height", "width"), [(250, 333), (480, 640), (31, 65), (1, 1)])
def test_priors_match_literal_loops_with_ceil_sizes(height: int, width: int) -> None:
    np.testing.assert_allclose(
        prior_boxes(height, width, CONFIG), _priors_by_loops(height, width, CONFIG), rtol=1e-15
    )


def test_non_multiple_size_rounds_feature_maps_up() -> None:
    # 250x333: 32x42, 16x21 and 8x11 cells (ceil), not 31x41, 15x20, 7x10 (floor).
    assert prior_boxes(250, 333, CONFIG).shape[0] == (32 * 42 + 16 * 21 + 8 * 11) * 2 == 3536


def test_ceil_is_what_stride_two_convolutions_produce() -> None:
    # Both backbones downsample with 3x3 (or 7x7 / 1x1) stride-2 convs padded to "same":
    # out = floor((n + 2p - k) / 2) + 1 = ceil(n / 2) per layer, so ceil(n / 2^k) overall.
    for size in range(1, 700):
        n = size
        for step in (2, 4, 8, 16, 32):
            n = (n + 2 * 1 - 3) // 2 + 1
            assert n == math.ceil(size / step), (size, step)


def test_priors_are_cached_read_only_and_configs_hash() -> None:
    priors = prior_boxes(96, 128, CONFIG)
    assert prior_boxes(96, 128, CONFIG.model_copy()) is priors
    assert not priors.flags.writeable
    with pytest.raises(ValueError):
        priors[0, 0] = 1.0
    listed = PriorSpec(min_sizes=[[16, 32], [64, 128], [256, 512]], steps=[8, 16, 32])  # type: ignore[arg-type]
    assert listed == CONFIG and hash(listed) == hash(CONFIG)
    clipped = prior_boxes(96, 128, CONFIG.model_copy(update={"clip": True}))
    assert clipped.max() <= 1.0 < priors.max()


def test_prior_config_rejects_mismatched_levels() -> None:
    with pytest.raises(ValueError, match="steps"):
        PriorSpec(min_sizes=((16,),), steps=(8, 16))


def test_decode_round_trip() -> None:
    rng = np.random.default_rng(3)
    priors = prior_boxes(480, 640, CONFIG)[rng.choice(12600, 50, replace=False)]
    corners = rng.uniform(0.0, 0.8, size=(50, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0.02, 0.2, size=(50, 2))], axis=1)
    loc = _encode_boxes(boxes, priors, CONFIG.variance)
    np.testing.assert_allclose(decode_boxes(loc, priors, CONFIG.variance), boxes, atol=1e-12)

    points = rng.uniform(0.0, 1.0, size=(50, 5, 2))
    landms = _encode_landmarks(points, priors, CONFIG.variance)
    np.testing.assert_allclose(
        decode_landmarks(landms, priors, CONFIG.variance), points, atol=1e-12
    )


def test_decode_hand_values() -> None:
    prior = np.array([[0.5, 0.5, 0.1, 0.2]])
    # Centre shifts by 1 * 0.1 * w; width grows by exp(5 * 0.2) = e.
    box = decode_boxes(np.array([[1.0, 0.0, 5.0, 0.0]]), prior, (0.1, 0.2))
    np.testing.assert_allclose(box, [[0.51 - 0.05 * math.e, 0.4, 0.51 + 0.05 * math.e, 0.6]])
    marks = decode_landmarks(np.array([[1.0, -1.0] + [0.0] * 8]), prior, (0.1, 0.2))
    np.testing.assert_allclose(marks[0, 0], [0.51, 0.48])
    np.testing.assert_allclose(marks[0, 1:], np.full((4, 2), 0.5))


def _outputs_with_faces(
    height: int, width: int, faces: list[tuple[int, list[float], float, list[list[float]]]]
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Network outputs where prior ``index`` predicts ``box`` (pixels) with ``score``."""
    priors = prior_boxes(height, width, CONFIG)
    n = len(priors)
    loc = np.zeros((n, 4), np.float32)
    conf = np.tile(np.array([[0.99, 0.01]], np.float32), (n, 1))
    landms = np.zeros((n, 10), np.float32)
    to_unit = np.array([width, height], float)
    for index, box, score, points in faces:
        p = priors[index : index + 1]
        loc[index] = _encode_boxes(np.array([box]) / np.tile(to_unit, 2), p, CONFIG.variance)[0]
        landms[index] = _encode_landmarks(np.array([points]) / to_unit, p, CONFIG.variance)[0]
        conf[index] = [1 - score, score]
    return loc, conf, landms


FACE_A = [100.0, 120.0, 180.0, 220.0]
POINTS_A = [[125.0, 160.0], [155.0, 160.0], [140.0, 180.0], [128.0, 200.0], [152.0, 200.0]]
FACE_B = [400.0, 50.0, 440.0, 100.0]
POINTS_B = [[410.0, 70.0], [430.0, 70.0], [420.0, 80.0], [412.0, 90.0], [428.0, 90.0]]


def test_detect_from_outputs_thresholds_sorts_and_suppresses() -> None:
    near_a = [102.0, 121.0, 181.0, 223.0]
    loc, conf, landms = _outputs_with_faces(
        480,
        640,
        [
            (5000, FACE_A, 0.95, POINTS_A),
            (5002, near_a, 0.90, POINTS_A),  # duplicate of A: removed by NMS
            (700, FACE_B, 0.80, POINTS_B),
            (900, [10.0, 10.0, 50.0, 50.0], 0.30, POINTS_B),  # below the threshold
        ],
    )
    found = detect_from_outputs(loc, conf, landms, height=480, width=640, config=CONFIG)
    assert [round(d.score, 6) for d in found] == [0.95, 0.8]
    np.testing.assert_allclose(found[0].box, FACE_A, atol=1e-3)
    np.testing.assert_allclose(found[0].landmarks, POINTS_A, atol=1e-3)
    np.testing.assert_allclose(found[1].box, FACE_B, atol=1e-3)
    np.testing.assert_allclose(found[1].landmarks, POINTS_B, atol=1e-3)
    assert all(isinstance(v, float) for v in found[0].box)

    # A batch dimension of one is accepted; keep_top_k and top_k cut the list.
    batched = detect_from_outputs(
        loc[None], conf[None], landms[None], height=480, width=640, config=CONFIG, keep_top_k=1
    )
    assert len(batched) == 1 and batched[0] == found[0]
    only_best = detect_from_outputs(
        loc, conf, landms, height=480, width=640, config=CONFIG, top_k=1
    )
    assert only_best == found[:1]
    none = detect_from_outputs(
        loc, conf, landms, height=480, width=640, config=CONFIG, score_threshold=0.99
    )
    assert none == []


def test_detect_from_outputs_maps_back_through_scale() -> None:
    # A 1500x2000 photo resized for the network: results must come back in photo pixels.
    new_h, new_w, scale = resize_for_detection(1500, 2000)
    assert (new_h, new_w) == (768, 1024)
    sx, sy = scale
    photo_box = [600.0, 300.0, 900.0, 700.0]
    photo_points = [[700.0, 450.0], [800.0, 450.0], [750.0, 520.0], [710.0, 600.0], [790.0, 600.0]]
    net_box = [photo_box[0] * sx, photo_box[1] * sy, photo_box[2] * sx, photo_box[3] * sy]
    net_points = [[x * sx, y * sy] for x, y in photo_points]
    loc, conf, landms = _outputs_with_faces(new_h, new_w, [(12345, net_box, 0.9, net_points)])
    (face,) = detect_from_outputs(
        loc, conf, landms, height=new_h, width=new_w, config=CONFIG, scale=scale
    )
    np.testing.assert_allclose(face.box, photo_box, atol=1e-2)
    np.testing.assert_allclose(face.landmarks, photo_points, atol=1e-2)
    # A float scale applies to both axes.
    (half,) = detect_from_outputs(
        loc, conf, landms, height=new_h, width=new_w, config=CONFIG, scale=0.5
    )
    np.testing.assert_allclose(half.box, np.array(net_box) * 2, atol=1e-2)


def test_detect_from_outputs_rejects_wrong_input_size() -> None:
    loc, conf, landms = _outputs_with_faces(480, 640, [])
    with pytest.raises(ValueError, match="priors"):
        detect_from_outputs(loc, conf, landms, height=640, width=640, config=CONFIG)
    with pytest.raises(ValueError, match="batch"):
        detect_from_outputs(
            np.stack([loc, loc]), conf, landms, height=480, width=640, config=CONFIG
        )


@pytest.mark.parametrize(
    ("size", "kwargs", "expected"),
    [
        ((480, 640), {}, (480, 640)),  # already a multiple and small enough: untouched
        ((3000, 4000), {}, (768, 1024)),  # long side capped at max_side
        ((250, 333), {}, (256, 320)),  # nearest multiple of 32 per side
        ((1000, 3000), {}, (352, 1024)),  # 341.3 -> 352
        ((10, 10), {}, (32, 32)),  # at least one multiple
        ((100, 200), {"min_side": 320}, (320, 640)),  # upscaled to min_side
        ((100, 2000), {"min_side": 320}, (64, 1024)),  # max_side wins over min_side
        ((3000, 4000), {"multiple": 1}, (768, 1024)),
        ((1000, 1000), {"max_side": 1000}, (992, 992)),  # never above max_side
        ((1000, 1000), {"max_side": 0}, (992, 992)),  # no cap: only rounding
    ],
)
def test_resize_for_detection(
    size: tuple[int, int], kwargs: dict[str, int], expected: tuple[int, int]
) -> None:
    new_h, new_w, (sx, sy) = resize_for_detection(*size, **kwargs)
    assert (new_h, new_w) == expected
    assert sx == new_w / size[1] and sy == new_h / size[0]


def test_resize_for_detection_keeps_aspect_within_half_a_multiple() -> None:
    for height in range(40, 3000, 37):
        for width in (33, 480, 1023, 1500, 5000):
            new_h, new_w, _ = resize_for_detection(height, width)
            assert new_h % 32 == 0 and new_w % 32 == 0 and max(new_h, new_w) <= 1024
            factor = min(1.0, 1024 / max(height, width))
            assert abs(new_h - height * factor) <= 16 or new_h == 32
            assert abs(new_w - width * factor) <= 16 or new_w == 32
