from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from gantry.core.preprocess import normalise
from gantry.serving.faces.boxes import iou, pad_boxes_to_image
from gantry.serving.faces.mtcnn import (
    bbreg,
    crop_and_resize,
    crop_windows,
    detect_faces,
    generate_pnet_boxes,
    pyramid_scales,
)
from gantry.serving.faces.types import Detection
from trainer.catalog import card

# The cascade hands each network pixels; the service normalises them with the stage's card.
STAGES = {stage: card(f"mtcnn-{stage}") for stage in ("pnet", "rnet", "onet")}
PIXEL_MEAN, PIXEL_STD = STAGES["onet"].mean[0], STAGES["onet"].std[0]


def served(stage: str, net: Any) -> Any:
    """``net`` (normalised NCHW in) behind the card's normalisation, as the service calls it."""
    return lambda pixels: net(normalise(pixels, STAGES[stage]))


def cascade(image: NDArray[Any], *, pnet: Any, rnet: Any, onet: Any, **kw: Any) -> list[Detection]:
    return detect_faces(
        image,
        pnet=served("pnet", pnet),
        rnet=served("rnet", rnet),
        onet=served("onet", onet),
        **kw,
    )


# --- the box maths, against hand-computed values -------------------------------------------


def test_pyramid_scales() -> None:
    # m = 12/20 = 0.6; the short side 100 * 0.6 * 0.709^k stays >= 12 for k = 0..4.
    assert pyramid_scales(100, 150) == pytest.approx([0.6 * 0.709**k for k in range(5)])
    # 480 * 0.3 = 144 >= 12 * 0.709^-7 = 131.7 > ... : eight scales.
    assert len(pyramid_scales(480, 640, min_face_size=40)) == 8
    assert pyramid_scales(19, 400) == []  # 19 * 0.6 = 11.4 < 12
    assert pyramid_scales(20, 20) == [0.6]
    with pytest.raises(ValueError):
        pyramid_scales(100, 100, factor=1.0)


def test_the_cards_normalise_to_nchw_as_facenet_pytorch() -> None:
    image = np.zeros((1, 2, 3, 3), np.uint8)
    image[..., 0] = 255
    image[0, 0, 1, 2] = 128
    for stage_card in STAGES.values():
        x = normalise(image, stage_card)
        assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
        assert x[0, 0, 0, 0] == 0.99609375  # (255 - 127.5) / 128
        assert x[0, 1, 0, 0] == -0.99609375
        assert x[0, 2, 0, 1] == 0.00390625  # channel 2 of pixel (row 0, col 1)
        assert normalise(np.zeros((4, 5, 6, 3)), stage_card).shape == (4, 3, 5, 6)


def test_generate_pnet_boxes_hand_values() -> None:
    # A non-square map so that swapping x and y would change the answer.
    prob = np.zeros((5, 8))
    reg = np.zeros((4, 5, 8))
    prob[2, 5] = 0.9  # row 2 = y, column 5 = x
    reg[:, 2, 5] = [0.1, 0.2, 0.3, 0.4]
    prob[4, 1] = 0.6  # exactly the threshold: kept (>=)
    prob[0, 0] = 0.59
    boxes, scores, regs = generate_pnet_boxes(reg, prob, 0.5, 0.6)
    # x1 = floor((2*5 + 1) / 0.5) = 22, y1 = floor((2*2 + 1) / 0.5) = 10,
    # x2 = floor((2*5 + 12) / 0.5) = 44, y2 = floor((2*2 + 12) / 0.5) = 32.
    np.testing.assert_array_equal(boxes, [[22, 10, 44, 32], [6, 18, 28, 40]])
    np.testing.assert_array_equal(scores, [0.9, 0.6])
    np.testing.assert_array_equal(regs, [[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0]])
    # Fractional scales floor: (11 / 0.3, 5 / 0.3, 22 / 0.3, 16 / 0.3).
    boxes, _, _ = generate_pnet_boxes(reg, prob, 0.3, 0.7)
    np.testing.assert_array_equal(boxes, [[36, 16, 73, 53]])


def test_generate_pnet_boxes_rounds_like_facenet_pytorch() -> None:
    # (2 * 67 + 1) / 0.6 is exactly 225, but facenet-pytorch divides in float32, where it is
    # 224.99998: the floor must give 224 to reproduce its proposals.
    prob = np.zeros((1, 68))
    prob[0, 67] = 1.0
    boxes, _, _ = generate_pnet_boxes(np.zeros((4, 1, 68)), prob, 0.6, 0.5)
    assert boxes[0, 0] == 224


def test_bbreg_plus_one_conventions() -> None:
    box = np.array([[10.0, 20.0, 29.0, 59.0]])
    reg = np.array([[0.1, -0.1, 0.2, 0.05]])
    # R-Net / O-Net: w = 29 - 10 + 1 = 20, h = 40.
    np.testing.assert_allclose(bbreg(box, reg), [[12, 16, 33, 61]])
    # P-Net stage: w = 19, h = 39.
    np.testing.assert_allclose(bbreg(box, reg, plus_one=False), [[11.9, 16.1, 32.8, 60.95]])


def test_crop_windows_truncate_towards_zero() -> None:
    boxes = np.array([[10.7, 20.2, 29.9, 40.0], [-3.7, -0.5, 5.2, 3.9]])
    np.testing.assert_array_equal(crop_windows(boxes), [[9, 19, 29, 40], [-4, -1, 5, 3]])


def _reference_crops(image: NDArray[Any], boxes: NDArray[Any], size: int) -> NDArray[Any]:
    # MTCNN's pad(): copy the in-image part into a zero crop, then cv2 INTER_AREA per box.
    windows = crop_windows(boxes)
    padded = pad_boxes_to_image(windows, image.shape[0], image.shape[1])
    out = []
    for src, dst, (h, w) in zip(padded.source, padded.target, padded.size, strict=True):
        crop = np.zeros((h, w, 3), np.float32)
        crop[dst[1] : dst[3], dst[0] : dst[2]] = image[src[1] : src[3], src[0] : src[2]]
        out.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


@pytest.mark.parametrize("size", [24, 48])
def test_crop_and_resize_matches_padded_cv2_area(size: int) -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8)
    boxes = np.array(
        [
            [10, 12, 49, 51],  # inside, downscaled
            [-15.3, -8.9, 24.6, 31.2],  # over the top-left corner
            [70.2, 40.5, 110.9, 81.0],  # over the bottom-right corner
            [-20, -20, 120, 120],  # larger than the image
            [30, 30, 37, 37],  # upscaled
            [5.5, 60.1, 27.9, 82.4],  # fractional, over the bottom edge
            [100, 100, 130, 130],  # entirely outside: all black
        ]
    )
    got = crop_and_resize(image, boxes, size)
    assert got.shape == (len(boxes), size, size, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference_crops(image, boxes, size), atol=1e-2)
    assert np.all(got[-1] == 0.0)  # black pixels, before normalisation


def test_crop_and_resize_rejects_empty_windows() -> None:
    with pytest.raises(ValueError, match="pixel"):
        crop_and_resize(np.zeros((10, 10, 3), np.uint8), np.array([[5.0, 5.0, 3.0, 9.0]]), 24)


# --- the cascade, with synthetic networks ---------------------------------------------------
#
# The image is black with white squares ("faces"). A face's box is its square grown by MARGIN
# of its side on every edge. The fake P-Net is an oracle that knows the squares; the fake
# R-Net and O-Net only see their crops: they find the white square in the crop, score the crop
# by its IoU with the face box and regress onto it, as trained networks would.

MARGIN = 0.15
FRACTIONS = np.array([[0.3, 0.3], [0.7, 0.3], [0.5, 0.55], [0.35, 0.8], [0.65, 0.8]])
SQUARES = [(40, 30, 100, 90), (150, 100, 190, 140)]  # 0-based half-open x0, y0, x1, y1
HEIGHT, WIDTH = 160, 220


def _face_box(square: tuple[int, int, int, int]) -> NDArray[np.float64]:
    x0, y0, x1, y1 = square
    m = MARGIN * (x1 - x0)
    return np.array([x0 - m, y0 - m, x1 + m, y1 + m])


def _image() -> NDArray[np.uint8]:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for x0, y0, x1, y1 in SQUARES:
        image[y0:y1, x0:x1] = 255
    return image


def _pair_iou(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]:
    lt, rb = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., 2:], b[..., 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = np.prod(a[..., 2:] - a[..., :2], axis=-1) + np.prod(b[..., 2:] - b[..., :2], axis=-1)
    return inter / (area - inter)


class FakePNet:
    """Scores each 12x12 window by its IoU with the nearest face box and regresses onto it."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: NDArray[np.float32]) -> tuple[NDArray[Any], NDArray[Any]]:
        assert x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
        self.shapes.append(x.shape)
        level_h, level_w = x.shape[2:]
        scale = level_w / WIDTH  # close enough to the true scale for an oracle
        rows, cols = (level_h - 12) // 2 + 1, (level_w - 12) // 2 + 1
        gx, gy = np.meshgrid(np.arange(cols), np.arange(rows))
        xy = np.stack([gx, gy, gx, gy], axis=-1).astype(float) * 2
        windows = (xy + np.array([0.0, 0.0, 12.0, 12.0])) / scale
        faces = np.stack([_face_box(s) for s in SQUARES])
        ious = _pair_iou(windows[:, :, None], faces[None, None])
        best = faces[np.argmax(ious, axis=-1)]
        # Regress the way the cascade applies it: q-box corners plus reg times (q2 - q1).
        q1 = np.floor((xy[..., :2] + 1) / scale)
        q2 = np.floor((xy[..., :2] + 12) / scale)
        q = np.concatenate([q1, q2], axis=-1)
        reg = (best - q) / np.tile(q2 - q1, 2)
        prob = ious.max(axis=-1)
        return reg.transpose(2, 0, 1)[None], np.stack([1 - prob, prob])[None]


def _find_face(crop: NDArray[Any]) -> NDArray[np.float64] | None:
    """Face box in crop pixels from the white square seen in a normalised crop, if whole."""
    white = (crop[0] * PIXEL_STD + PIXEL_MEAN) / 255.0
    size = white.shape[0]
    extents = []
    for profile in (white.max(axis=0), white.max(axis=1)):  # coverage per column, per row
        hit = np.flatnonzero(profile > 1e-3)
        if hit.size == 0 or hit[0] == 0 or hit[-1] == size - 1:
            return None  # no face, or cut by the crop edge
        extents.append((hit[0] + 1 - profile[hit[0]], hit[-1] + profile[hit[-1]]))
    (left, right), (top, bottom) = extents
    m = MARGIN * (right - left)
    return np.array([left - m, top - m, right + m, bottom + m])


def _fake_stage(crops: NDArray[np.float32]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    size = crops.shape[-1]
    whole = np.array([0.0, 0.0, size, size])
    reg, points, prob = np.zeros((len(crops), 4)), np.zeros((len(crops), 10)), np.zeros(len(crops))
    for k, crop in enumerate(crops):
        face = _find_face(crop)
        if face is None:
            prob[k] = 0.05
            continue
        prob[k] = _pair_iou(whole, face)
        reg[k] = (face - whole) / size
        square_lt = face[:2] + MARGIN * (face[2:] - face[:2]) / (1 + 2 * MARGIN)
        square_side = (face[2:] - face[:2]) / (1 + 2 * MARGIN)
        inner = square_lt + FRACTIONS * square_side
        points[k] = np.concatenate([inner[:, 0], inner[:, 1]]) / size  # five x, then five y
    return reg, points, np.stack([1 - prob, prob], axis=1)


def fake_rnet(crops: NDArray[np.float32]) -> tuple[NDArray[Any], NDArray[Any]]:
    assert crops.shape[1:] == (3, 24, 24) and crops.dtype == np.float32
    reg, _, prob = _fake_stage(crops)
    return reg, prob


def fake_onet(crops: NDArray[np.float32]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    assert crops.shape[1:] == (3, 48, 48) and crops.dtype == np.float32
    return _fake_stage(crops)


def test_cascade_finds_the_synthetic_faces() -> None:
    pnet = FakePNet()
    found = cascade(_image(), pnet=pnet, rnet=fake_rnet, onet=fake_onet)
    assert len(found) == 2
    assert found[0].score >= found[1].score > 0.7
    # P-Net saw every pyramid level at facenet-pytorch's size int(h * s + 1).
    expected_shapes = [
        (1, 3, int(HEIGHT * s + 1), int(WIDTH * s + 1)) for s in pyramid_scales(HEIGHT, WIDTH)
    ]
    assert pnet.shapes == expected_shapes
    for square in SQUARES:
        face = _face_box(square)
        # 1-based inclusive corners: (left + 1, top + 1, right, bottom) of the continuous box.
        expected_box = face + np.array([1.0, 1.0, 0.0, 0.0])
        (match,) = [d for d in found if iou(np.array([d.box]), face[None])[0, 0] > 0.5]
        # The cascade crops at truncated corners but regresses the float box: ~1 px slack.
        np.testing.assert_allclose(match.box, expected_box, atol=1.5)
        side = square[2] - square[0]
        expected_points = np.array(square[:2]) + FRACTIONS * side  # 0-based continuous
        np.testing.assert_allclose(match.landmarks, expected_points, atol=1.5)


def test_onet_landmarks_are_x_then_y_fractions_of_the_crop_box() -> None:
    def still_onet(
        crops: NDArray[np.float32],
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        # No regression, so each output box is the box O-Net was shown: the landmark formula
        # can be checked exactly against it.
        k = len(crops)
        points = np.tile(np.concatenate([FRACTIONS[:, 0], FRACTIONS[:, 1]]), (k, 1))
        return np.zeros((k, 4)), points, np.tile([0.1, 0.9], (k, 1))

    found = cascade(_image(), pnet=FakePNet(), rnet=fake_rnet, onet=still_onet)
    assert found
    for d in found:
        x1, y1, x2, y2 = d.box
        expected = np.array([x1 - 1, y1 - 1]) + FRACTIONS * np.array([x2 - x1 + 1, y2 - y1 + 1])
        np.testing.assert_allclose(d.landmarks, expected, rtol=0, atol=1e-9)
        assert d.score == pytest.approx(0.9)


def test_cascade_batches_and_empty_results() -> None:
    sizes: list[int] = []

    def counting_rnet(crops: NDArray[np.float32]) -> tuple[NDArray[Any], NDArray[Any]]:
        sizes.append(len(crops))
        return fake_rnet(crops)

    whole = cascade(_image(), pnet=FakePNet(), rnet=fake_rnet, onet=fake_onet)
    chunked = cascade(_image(), pnet=FakePNet(), rnet=counting_rnet, onet=fake_onet, max_batch=1)
    assert chunked == whole
    assert sizes == [1] * len(sizes) and len(sizes) > 1

    black = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    # The oracle P-Net still proposes boxes; the crop-based nets find nothing there.
    assert cascade(black, pnet=FakePNet(), rnet=fake_rnet, onet=fake_onet) == []
    strict = (0.6, 0.7, 1.0)  # O-Net must beat a probability of 1: nothing passes
    assert (
        cascade(_image(), pnet=FakePNet(), rnet=fake_rnet, onet=fake_onet, thresholds=strict) == []
    )
    tiny = np.zeros((10, 10, 3), np.uint8)  # below P-Net's 12 px at every scale
    assert cascade(tiny, pnet=FakePNet(), rnet=fake_rnet, onet=fake_onet) == []
