"""Label map → pix2pixHD generator input, numpy only."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gantry.core.labelmaps import (
    CMP_FACADE_CLASSES,
    cmp_facade_classes,
    feature_maps,
    generator_input,
    instance_boundary,
    one_hot,
)


def test_module_does_not_import_torch() -> None:
    """The gateway and workers import this module and must stay free of PyTorch."""
    code = "import sys, gantry.core.labelmaps; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_hot_puts_a_single_one_per_pixel() -> None:
    label = np.array([[0, 2], [1, 2]], np.uint8)
    out = one_hot(label, 3)
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    assert np.array_equal(out.sum(0), np.ones((2, 2)))
    assert np.array_equal(out.argmax(0), label)


@pytest.mark.parametrize("bad", [-1, 3])
def test_one_hot_rejects_out_of_range_labels(bad: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.2"):
        one_hot(np.array([[0, bad]]), 3)


def test_one_hot_rejects_float_maps() -> None:
    with pytest.raises(TypeError):
        one_hot(np.zeros((2, 2), np.float32), 3)


def test_boundary_on_a_hand_example() -> None:
    inst = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    # (0,0) has only same-id neighbours; every other pixel touches another id, including
    # both sides of each differing pair.
    expected = np.array([[0, 1, 1], [1, 1, 1], [1, 1, 1]], np.float32)
    assert np.array_equal(instance_boundary(inst), expected)


def test_boundary_is_zero_inside_regions_and_at_the_image_border() -> None:
    inst = np.zeros((6, 7), np.int32)
    inst[1:5, 1:6] = 9
    edge = instance_boundary(inst)
    assert edge[2, 2] == 0 and edge[3, 4] == 0  # inside the square
    assert edge[1, 1] == 1 and edge[0, 1] == 1  # both sides of its top edge
    assert edge[0, 6] == 0 and edge[5, 0] == 0  # the image border is not an edge


def test_boundary_matches_brute_force_on_random_maps() -> None:
    rng = np.random.default_rng(0)
    inst = rng.integers(0, 3, (17, 23))
    brute = np.zeros(inst.shape, np.float32)
    h, w = inst.shape
    for y in range(h):
        for x in range(w):
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and inst[yy, xx] != inst[y, x]:
                    brute[y, x] = 1
    assert np.array_equal(instance_boundary(inst), brute)


def test_feature_maps_broadcast_each_instance_vector_and_zero_the_rest() -> None:
    inst = np.array([[5, 5, 26001], [7, 5, 26001]])
    feats = feature_maps(inst, {5: [0.1, 0.2], 26001: np.array([-1.0, 1.0]), 99: [3, 3]}, 2)
    assert feats.shape == (2, 2, 3) and feats.dtype == np.float32
    assert np.allclose(feats[:, 0, 0], [0.1, 0.2]) and np.allclose(feats[:, 1, 1], [0.1, 0.2])
    assert np.allclose(feats[:, 0, 2], [-1, 1]) and np.allclose(feats[:, 1, 2], [-1, 1])
    assert np.array_equal(feats[:, 1, 0], [0, 0])  # instance 7 has no vector


def test_feature_maps_reject_wrong_lengths() -> None:
    with pytest.raises(ValueError, match="3 values, not 2"):
        feature_maps(np.zeros((2, 2), int), {0: [1, 2, 3]}, 2)


def test_generator_input_layout_with_an_instance_map() -> None:
    label = np.array([[0, 0, 1], [0, 0, 1]])
    inst = np.array([[4, 6, 8], [4, 6, 8]])  # three instances, two of class 0
    x = generator_input(label, inst, {6: [0.5]}, n_classes=2, feat_num=1)
    assert x.shape == (2 + 1 + 1, 2, 3)
    assert np.array_equal(x[:2], one_hot(label, 2))
    assert np.array_equal(x[2], instance_boundary(inst))  # the instance map, not the labels
    assert x[2, 0, 0] == 1  # instance 4 | 6 edge inside class 0
    assert np.array_equal(x[3], [[0, 0.5, 0], [0, 0.5, 0]])


def test_generator_input_falls_back_to_the_label_map() -> None:
    label = np.array([[0, 0, 1], [0, 0, 1]])
    x = generator_input(label, None, {1: [0.25, -0.5]}, n_classes=2, feat_num=2)
    assert np.array_equal(x[2], instance_boundary(label))
    assert x[2, 0, 0] == 0  # no instance edge inside class 0 any more
    assert np.allclose(x[3:, :, 2], [[0.25, 0.25], [-0.5, -0.5]])
    assert np.array_equal(x[3:, :, :2], np.zeros((2, 2, 2)))


def test_generator_input_without_boundary_or_features() -> None:
    label = np.array([[1, 0]])
    x = generator_input(label, n_classes=2, boundary=False)
    assert np.array_equal(x, one_hot(label, 2))


def test_generator_input_checks_the_instance_map_size() -> None:
    with pytest.raises(ValueError, match="differ"):
        generator_input(np.zeros((2, 2), int), np.zeros((2, 3), int), n_classes=1)


def test_cmp_facade_values_map_to_zero_based_classes() -> None:
    png = np.array([[1, 12], [3, 2]], np.uint8)
    assert np.array_equal(cmp_facade_classes(png), [[0, 11], [2, 1]])
    assert len(CMP_FACADE_CLASSES) == 12 and CMP_FACADE_CLASSES[2] == "window"
    with pytest.raises(ValueError, match=r"1\.\.12"):
        cmp_facade_classes(np.array([[0, 1]], np.uint8))
