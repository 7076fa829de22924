"""TP-GAN: the patch geometry (sizes, frontal boxes, cutting around landmark centres), that the
points steer the local pathways, gradients, the discriminator, and the ONNX export."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from trainer.archs import build_network
from trainer.archs.tpgan import (
    FRONTAL_CENTRES,
    PART_POINTS,
    PARTS,
    PATCH_SIZES,
    TPGANGenerator,
    cut_patch,
    frontal_boxes,
    frontal_patches,
    part_centres,
    patch_sizes,
)

SIZE = 64


def _tiny() -> TPGANGenerator:
    torch.manual_seed(0)
    g = build_network("tpgan_generator_tiny")
    assert isinstance(g, TPGANGenerator)
    return g


def _points(n: int, **centres: tuple[float, float]) -> torch.Tensor:
    """(n, 68, 2) points all at the crop centre but the named parts', all at that centre."""
    points = torch.full((n, 68, 2), 0.5)
    for part, (x, y) in centres.items():
        points[:, PART_POINTS[part].start : PART_POINTS[part].stop] = torch.tensor([x, y])
    return points


FACE = {
    "left_eye": (0.30, 0.42),
    "right_eye": (0.62, 0.38),
    "nose": (0.45, 0.60),
    "mouth": (0.47, 0.78),
}


def test_the_variants_map_faces_to_frontal_views_in_range() -> None:
    g = _tiny().eval()
    torch.manual_seed(1)
    image = torch.rand(3, 1, SIZE, SIZE) * 2 - 1
    points = _points(3, **FACE) + torch.rand(3, 68, 2) * 0.02
    with torch.no_grad():
        parts = g.forward_parts(image, points)
        out = g(image, points)
    assert out.shape == (3, 1, SIZE, SIZE)
    assert float(out.min()) >= -1 and float(out.max()) <= 1 and float(out.std()) > 0
    assert torch.equal(parts["image"], out)
    sizes = patch_sizes(SIZE)
    assert [tuple(p.shape) for p in parts["patches"]] == [(3, 1, *sizes[k]) for k in PARTS]
    assert all(float(p.abs().max()) <= 1 for p in parts["patches"])
    assert parts["centres"].shape == (3, 4, 2)
    with torch.device("meta"):
        full = build_network("tpgan_generator")
    assert sum(p.numel() for p in full.parameters()) == 1_813_973  # CPU-trainable: < 2M
    d = build_network("tpgan_discriminator_tiny")
    assert d(out).shape == (3, 1, 6, 6)
    with pytest.raises(ValueError, match="takes"):
        g(torch.zeros(1, 1, 32, 32), _points(1))
    with pytest.raises(ValueError, match="points"):
        g(image, points[:, :5])


def test_patch_sizes_are_half_the_papers_and_the_frontal_boxes_sit_on_the_centres() -> None:
    assert patch_sizes(SIZE) == PATCH_SIZES
    # At the paper's 128 px, its own patches: eyes 40x40, nose 40x32, mouth 32x48 (h x w).
    assert patch_sizes(128) == {
        "left_eye": (40, 40),
        "right_eye": (40, 40),
        "nose": (40, 32),
        "mouth": (32, 48),
    }
    boxes = frontal_boxes(SIZE)
    for part, box in boxes.items():
        x, y = FRONTAL_CENTRES[part]
        assert abs(box.left + box.width / 2 - x * SIZE) <= 0.5
        assert abs(box.top + box.height / 2 - y * SIZE) <= 0.5
        assert box.top >= 0 and box.left >= 0
        assert box.top + box.height <= SIZE and box.left + box.width <= SIZE
    image = torch.rand(2, 1, SIZE, SIZE)
    cut = frontal_patches(image)
    assert len(cut) == 4
    for part, patch in zip(PARTS, cut, strict=True):
        b = boxes[part]
        assert torch.equal(patch, image[..., b.top : b.top + b.height, b.left : b.left + b.width])
    assert all(torch.equal(a, b) for a, b in zip(_tiny().frontal_patches(image), cut, strict=True))


def test_patches_are_cut_around_the_landmark_centres() -> None:
    # A bright 20x20 square at rows 10..30, cols 5..25; centre (15, 20) px.
    image = torch.zeros(2, 1, SIZE, SIZE)
    image[:, :, 10:30, 5:25] = 1
    centre = torch.tensor([[15 / SIZE, 20 / SIZE], [15 / SIZE, 20 / SIZE]])
    assert torch.equal(cut_patch(image, centre, 20, 20), torch.ones(2, 1, 20, 20))
    # Whole pixels of any image, per sample; a non-square patch; zeros outside the crop.
    torch.manual_seed(2)
    image = torch.rand(2, 3, SIZE, SIZE)
    centre = torch.tensor([[(40 + 12) / SIZE, (30 + 8) / SIZE], [12 / SIZE, (50 + 8) / SIZE]])
    patch = cut_patch(image, centre, 16, 24)
    assert torch.allclose(patch[0], image[0, :, 30:46, 40:64], atol=1e-5)
    assert torch.allclose(patch[1, :, :14], image[1, :, 50:, 0:24], atol=1e-5)
    assert torch.equal(patch[1, :, 14:], torch.zeros(3, 2, 24))
    # Half a pixel off: the mean of two neighbouring columns.
    shifted = cut_patch(image, centre + torch.tensor([0.5 / SIZE, 0.0]), 16, 24)
    halves = (image[0, :, 30:46, 40:63] + image[0, :, 30:46, 41:64]) / 2
    assert torch.allclose(shifted[0, ..., :23], halves, atol=1e-5)
    # The centres are the parts' point means (the nose: all nine, not the tip).
    points = _points(1, **FACE)
    points[0, 30] = torch.tensor([0.9, 0.9])
    centres = part_centres(points)[0]
    assert torch.allclose(centres[:2], torch.tensor([FACE["left_eye"], FACE["right_eye"]]))
    nose = (8 * torch.tensor(FACE["nose"]) + torch.tensor([0.9, 0.9])) / 9
    assert torch.allclose(centres[2], nose) and torch.allclose(
        centres[3], torch.tensor([0.47, 0.78])
    )


def test_the_points_steer_the_local_pathways() -> None:
    g = _tiny().eval()
    torch.manual_seed(3)
    image = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
    points = _points(1, **FACE)
    with torch.no_grad():
        base = g.forward_parts(image, points)
        # Far from every part's window (bottom-right corner): no local patch changes, the
        # global pathway still sees it.
        corner = image.clone()
        corner[..., 58:, 58:] = 1
        far = g.forward_parts(corner, points)
        # Inside the left eye's window only (it spans rows ~17-37, cols ~9-29).
        eye = image.clone()
        eye[..., 26, 12] = 1
        near = g.forward_parts(eye, points)
        # The mouth's points 4 px to the right: its patch is cut elsewhere.
        moved = points.clone()
        moved[:, 48:68, 0] += 4 / SIZE
        steered = g.forward_parts(image, moved)
    assert all(torch.equal(a, b) for a, b in zip(base["patches"], far["patches"], strict=True))
    assert not torch.equal(base["image"], far["image"])
    assert not torch.equal(base["patches"][0], near["patches"][0])
    assert all(torch.equal(base["patches"][i], near["patches"][i]) for i in (1, 2, 3))
    assert not torch.equal(base["patches"][3], steered["patches"][3])
    assert all(torch.equal(base["patches"][i], steered["patches"][i]) for i in (0, 1, 2))
    assert float((base["image"] - steered["image"]).abs().max()) > 1e-6
    # The steered mouth patch lands at the fixed frontal mouth box, and only around it.
    diff = (base["image"] - steered["image"]).abs()[0, 0]
    rows, cols = torch.nonzero(diff > 1e-7, as_tuple=True)
    box = frontal_boxes(SIZE)["mouth"]
    # Three 3x3 fusion convs widen the box by at most 3 px on each side.
    assert int(rows.min()) >= box.top - 3 and int(rows.max()) < box.top + box.height + 3
    assert int(cols.min()) >= box.left - 3 and int(cols.max()) < box.left + box.width + 3


def test_gradients_reach_every_generator_weight() -> None:
    g = _tiny().train()
    torch.manual_seed(4)
    image = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    truth = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    parts = g.forward_parts(image, _points(2, **FACE))
    loss = (parts["image"] - truth).abs().mean()
    for patch, target in zip(parts["patches"], frontal_patches(truth), strict=True):
        loss = loss + (patch - target).abs().mean()
    loss.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_the_generator_exports_to_onnx_with_a_dynamic_batch(tmp_path: Path) -> None:
    g = _tiny().eval()
    path = tmp_path / "tpgan.onnx"
    image, points = torch.rand(2, 1, SIZE, SIZE) * 2 - 1, _points(2, **FACE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            g,
            (image, points),
            str(path),
            opset_version=17,
            dynamo=False,
            input_names=["image", "points"],
            output_names=["frontal"],
            dynamic_axes={"image": {0: "n"}, "points": {0: "n"}, "frontal": {0: "n"}},
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert "GridSample" in _op_types(path)
    torch.manual_seed(5)
    for n in (2, 3):
        x = torch.rand(n, 1, SIZE, SIZE) * 2 - 1
        p = _points(n, **FACE) + (torch.rand(n, 68, 2) - 0.5) * 0.1
        (y,) = session.run(["frontal"], {"image": x.numpy(), "points": p.numpy()})
        with torch.no_grad():
            expected = g(x, p).numpy()
        assert y.shape == (n, 1, SIZE, SIZE)
        assert float(np.abs(y - expected).max()) < 1e-4


def _op_types(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}
