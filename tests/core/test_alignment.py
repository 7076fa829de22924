from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from gantry.core.alignment import align_faces, similarity_transform
from trainer.catalog import faces

# insightface's template, as the future ArcFace card holds it.
ARCFACE_TEMPLATE_112 = np.asarray(faces.ARCFACE_TEMPLATE_112, np.float64)


def _matrix(scale: float, angle: float, tx: float, ty: float) -> NDArray[np.float64]:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def _apply(matrix: NDArray[Any], points: NDArray[Any]) -> NDArray[Any]:
    return points @ matrix[:, :2].T + matrix[:, 2]


def _least_squares_similarity(src: NDArray[Any], dst: NDArray[Any]) -> NDArray[np.float64]:
    # In 2-D a similarity is [[a, -b, tx], [b, a, ty]]: linear in (a, b, tx, ty), so ordinary
    # least squares gives the optimum independently of the SVD route.
    n = len(src)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def test_recovers_a_known_similarity_exactly() -> None:
    rng = np.random.default_rng(11)
    src = rng.uniform(0, 200, size=(5, 2))
    for scale, angle, tx, ty in [(1.7, 0.6, 12.0, -5.0), (0.3, -2.9, 0.0, 100.0), (1, 0, 0, 0)]:
        truth = _matrix(scale, angle, tx, ty)
        got = similarity_transform(src, _apply(truth, src))
        assert got.shape == (2, 3) and got.dtype == np.float64
        np.testing.assert_allclose(got, truth, atol=1e-10)


def test_noisy_points_give_the_least_squares_optimum() -> None:
    rng = np.random.default_rng(12)
    for _ in range(20):
        src = rng.uniform(0, 100, size=(5, 2))
        dst = _apply(_matrix(2.0, 0.4, 3.0, 4.0), src) + rng.normal(0, 3, size=(5, 2))
        np.testing.assert_allclose(
            similarity_transform(src, dst), _least_squares_similarity(src, dst), atol=1e-9
        )


def test_mirrored_points_still_give_a_rotation() -> None:
    src = ARCFACE_TEMPLATE_112
    mirrored = src * np.array([-1.0, 1.0])
    got = similarity_transform(src, mirrored)
    assert np.linalg.det(got[:, :2]) > 0  # no reflection
    np.testing.assert_allclose(got, _least_squares_similarity(src, mirrored), atol=1e-9)


def test_stacks_are_solved_at_once() -> None:
    rng = np.random.default_rng(13)
    src = rng.uniform(0, 100, size=(4, 5, 2))
    dst = rng.uniform(0, 100, size=(5, 2))
    stacked = similarity_transform(src, dst)
    assert stacked.shape == (4, 2, 3)
    for k in range(4):
        np.testing.assert_allclose(stacked[k], similarity_transform(src[k], dst), atol=1e-12)


def test_rejects_degenerate_input() -> None:
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), np.ones((4, 2)))


def test_template_values() -> None:
    assert ARCFACE_TEMPLATE_112.shape == (5, 2)
    np.testing.assert_array_equal(ARCFACE_TEMPLATE_112[0], [38.2946, 51.6963])
    np.testing.assert_array_equal(ARCFACE_TEMPLATE_112[4], [70.7299, 92.2041])
    assert isinstance(faces.ARCFACE_TEMPLATE_112, tuple)  # immutable, shared by cards


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_landmarks_on_the_template_give_the_identity_crop(dtype: Any) -> None:
    rng = np.random.default_rng(14)
    image = rng.integers(0, 256, size=(112, 112, 3)).astype(dtype)
    crops = align_faces(image, ARCFACE_TEMPLATE_112[None], ARCFACE_TEMPLATE_112, (112, 112))
    assert crops.shape == (1, 112, 112, 3) and crops.dtype == dtype
    np.testing.assert_array_equal(crops[0], image)


def test_scaled_and_shifted_faces_are_undone() -> None:
    rng = np.random.default_rng(15)
    chips = rng.integers(0, 256, size=(2, 112, 112, 3), dtype=np.uint8)
    # Each chip is enlarged 2x (nearest) into a bigger photo at its own offset. With pixel
    # centres at integers, chip pixel i covers photo pixels 2i and 2i + 1: x -> 2x + 0.5 + o.
    photo = np.zeros((300, 600, 3), np.uint8)
    offsets = [(20, 30), (300, 60)]
    landmarks = []
    for chip, (ox, oy) in zip(chips, offsets, strict=True):
        photo[oy : oy + 224, ox : ox + 224] = chip.repeat(2, axis=0).repeat(2, axis=1)
        landmarks.append(2 * ARCFACE_TEMPLATE_112 + 0.5 + np.array([ox, oy]))
    crops = align_faces(photo, np.stack(landmarks), ARCFACE_TEMPLATE_112, (112, 112))
    # Every sample falls between two equal photo pixels, so bilinear sampling is exact.
    np.testing.assert_array_equal(crops, chips)


def test_outside_the_image_is_black_and_no_faces_is_empty() -> None:
    image = np.full((112, 112, 3), 200, np.uint8)
    shifted = ARCFACE_TEMPLATE_112 - np.array([60.0, 0.0])  # face half off the left edge
    (crop,) = align_faces(image, shifted[None], ARCFACE_TEMPLATE_112, (112, 112))
    assert np.all(crop[:, :50] == 0) and np.all(crop[:, 70:] == 200)
    empty = align_faces(image, np.zeros((0, 5, 2)), ARCFACE_TEMPLATE_112, (112, 96))
    assert empty.shape == (0, 112, 96, 3)
