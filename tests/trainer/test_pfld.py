"""PFLD on the 300-W faces: the reference's layout, head pose from points, the weighted loss,
a few training steps, an exact resume, and the export parity gate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gantry.core.training import CONFIG_TYPES, PFLDConfig, load_train_config
from tests.paths import DATA
from trainer import checkpointing
from trainer.archs import build_network
from trainer.archs.pfld import PFLD, PFLDAuxiliary
from trainer.catalog import card
from trainer.data import build_dataset, collate
from trainer.data.blur import is_held_aside
from trainer.data.landmarks import (
    CONDITIONS,
    FLIP_68,
    FOLDER,
    Landmarks300W,
    conditions,
    head_pose,
    labelled_faces,
    normalised_mean_error,
)
from trainer.evaluation.landmarks import FAILURE_NME, landmark_figures, nme_per_face
from trainer.export.onnx import check_parity, export_onnx
from trainer.export.probes import probe_inputs
from trainer.loop import GENERATOR_FILE, train
from trainer.losses import pfld_loss, pose_weights

# Four faces a step, eight held aside, a checkpoint every 2 steps.
SMALL = {
    "data.val_images": 8,
    "batch_size": 4,
    "log_every": 1,
    "checkpoint_every": 2,
    "sample_every": 2,
    "time_limit_s": None,
}


def _config(**overrides: Any) -> PFLDConfig:
    config = load_train_config("pfld-300w", {**SMALL, **overrides})
    assert isinstance(config, PFLDConfig)
    return config


# --- polarisZhao/PFLD-pytorch's layout ------------------------------------------------------


def test_the_network_has_the_references_keys_and_shapes() -> None:
    net = build_network("pfld")
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # Written out from models/pfld.py (PFLDInference), with 68 points instead of 98.
    assert shapes["conv1.weight"] == (64, 3, 3, 3)
    assert shapes["conv2.weight"] == (64, 64, 3, 3)
    assert shapes["conv3_1.conv.0.weight"] == (128, 64, 1, 1)
    assert shapes["conv3_1.conv.3.weight"] == (128, 1, 3, 3)
    assert shapes["conv3_1.conv.6.weight"] == (64, 128, 1, 1)
    assert shapes["conv5_1.conv.0.weight"] == (512, 128, 1, 1)
    assert shapes["conv6_1.conv.7.running_var"] == (16,)
    assert shapes["conv7.0.weight"] == (32, 16, 3, 3)
    assert shapes["conv8.weight"] == (128, 32, 7, 7) and shapes["conv8.bias"] == (128,)
    assert shapes["fc.weight"] == (136, 176)
    blocks = {k.split(".")[0] for k in shapes}
    assert {f"block3_{i}" for i in range(2, 6)} | {f"block5_{i}" for i in range(2, 7)} <= blocks
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(1.26e6, rel=0.02)
    auxiliary = build_network("pfld_auxiliary")
    aux = {k: tuple(v.shape) for k, v in auxiliary.state_dict().items()}
    assert aux["conv4.0.weight"] == (128, 32, 7, 7) and aux["fc1.weight"] == (32, 128)
    assert aux["fc2.weight"] == (3, 32)


def test_points_come_out_relative_with_the_auxiliary_map() -> None:
    net = build_network("pfld").eval()
    assert isinstance(net, PFLD)
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    features, points = net(x, with_features=True)
    assert features.shape == (2, 64, 28, 28) and points.shape == (2, 68, 2)
    assert torch.equal(net(x), points)
    auxiliary = build_network("pfld_auxiliary").eval()
    assert isinstance(auxiliary, PFLDAuxiliary) and auxiliary(features).shape == (2, 3)


# --- pose, conditions, samples ---------------------------------------------------------------


def test_frontal_faces_solve_to_little_rotation_and_a_mirror_negates_yaw_and_roll() -> None:
    faces = labelled_faces(DATA / FOLDER, "train")
    poses = np.array([head_pose(f.points, 256.0) for f in faces])
    # Most 300-W faces look roughly at the camera.
    assert np.median(np.abs(np.degrees(poses)), axis=0).max() < 10
    face = faces[0]
    mirror = np.column_stack([256.0 - face.points[:, 0], face.points[:, 1]])[FLIP_68]
    yaw, pitch, roll = head_pose(face.points, 256.0)
    m_yaw, m_pitch, m_roll = head_pose(mirror, 256.0)
    assert m_yaw == pytest.approx(-yaw, abs=0.01) and m_roll == pytest.approx(-roll, abs=0.01)
    assert m_pitch == pytest.approx(pitch, abs=0.01)


def test_the_flip_permutation_is_an_involution_that_swaps_sides() -> None:
    assert sorted(FLIP_68) == list(range(68)) and (FLIP_68[FLIP_68] == np.arange(68)).all()
    assert (FLIP_68[0], FLIP_68[36], FLIP_68[48], FLIP_68[30]) == (16, 45, 54, 30)


def test_conditions_are_told_by_the_pose_and_the_mouth() -> None:
    face = labelled_faces(DATA / FOLDER, "train")[0].points
    flags = dict(zip(CONDITIONS, conditions(face, np.zeros(3)), strict=True))
    assert flags["frontal"] == 1 and flags["profile"] == flags["head_up"] == 0
    turned = dict(zip(CONDITIONS, conditions(face, np.radians([40.0, 25.0, 0.0])), strict=True))
    assert turned["profile"] == turned["head_up"] == 1 and turned["frontal"] == 0
    shut = face.copy()
    shut[66] = shut[62]
    assert conditions(shut, np.zeros(3))[CONDITIONS.index("expression")] == 0


def test_the_held_aside_faces_are_fixed_by_name_and_never_trained_on() -> None:
    train_faces = {f.path for f in labelled_faces(DATA / FOLDER, "train")}
    held = {f.path for f in labelled_faces(DATA / FOLDER, "val")}
    assert not train_faces & held and len(held) == 166 and len(train_faces) == 1041
    assert all(is_held_aside(p) for p in held)


def test_samples_are_jittered_by_the_global_generator_and_held_aside_ones_are_fixed() -> None:
    train_set = build_dataset("face_landmarks_300w", DATA, "train", 112)
    val = build_dataset("face_landmarks_300w", DATA, "val", 112)
    assert isinstance(train_set, Landmarks300W) and isinstance(val, Landmarks300W)
    torch.manual_seed(3)
    a = train_set.sample(5)
    torch.manual_seed(3)
    b = train_set.sample(5)
    c = train_set.sample(5)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["image"], c["image"])
    assert a["image"].shape == (3, 112, 112) and a["points"].shape == (68, 2)
    assert float(a["image"].min()) >= -1 and float(a["image"].max()) <= 1
    assert torch.equal(val.sample(0)["image"], val.sample(0)["image"])
    # A flipped sample is the mirror image with the points mirrored and renumbered.
    plain, flipped = val.sample(2), val.sample(2, flip=True)
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1))
    mirrored = torch.stack([1 - plain["points"][:, 0], plain["points"][:, 1]], dim=1)[FLIP_68]
    torch.testing.assert_close(flipped["points"], mirrored, atol=1e-5, rtol=0)


# --- the loss and the figures ----------------------------------------------------------------


def test_pflds_loss_weights_each_face_by_its_pose_error_and_conditions() -> None:
    truth = torch.zeros(2, 68, 2)
    points = torch.full((2, 68, 2), 0.1)  # squared error per face: 136 * 0.01
    pose = torch.tensor([[0.0, 0.0, 0.0], [math.pi / 2, 0.0, 0.0]])
    weights = torch.tensor([1.0, 2.0])
    loss, squared = pfld_loss(points, truth, pose, torch.zeros(2, 3), weights)
    # Face 0: pose exact, weight 0 (the reference has no floor); face 1: 1 - cos(pi/2) = 1.
    assert float(squared) == pytest.approx(1.36)
    assert float(loss) == pytest.approx((0 + 1 * 2 * 1.36) / 2)
    floored, _ = pfld_loss(points, truth, pose, torch.zeros(2, 3), weights, floor=1.0)
    assert float(floored) == pytest.approx((1 * 1 * 1.36 + 2 * 2 * 1.36) / 2)
    assert torch.equal(pose_weights(pose, pose), torch.zeros(2))


def test_the_nme_is_over_the_outer_eye_corners_and_the_mean_shape_is_the_floor() -> None:
    truth = torch.zeros(1, 68, 2)
    truth[0, 36], truth[0, 45] = torch.tensor([0.3, 0.4]), torch.tensor([0.7, 0.4])
    shifted = truth + torch.tensor([0.04, 0.0])
    assert float(nme_per_face(shifted, truth)[0]) == pytest.approx(0.1)
    figures = landmark_figures(shifted, truth, truth[0])
    assert figures["val_nme"] == pytest.approx(0.1) and figures["val_failure_rate"] == 1.0
    assert figures["val_nme_mean_shape"] == 0.0 and FAILURE_NME == 0.08
    assert normalised_mean_error(shifted[0].numpy(), truth[0].numpy()) == pytest.approx(0.1)


# --- runs and resume ---------------------------------------------------------------------------


def test_the_shipped_config_has_the_references_defaults_and_a_short_build() -> None:
    config = load_train_config("pfld-300w")
    assert isinstance(config, PFLDConfig) and CONFIG_TYPES.get("pfld") is PFLDConfig
    assert (config.optim.lr, config.weight_decay, config.pose_floor) == (1e-4, 1e-6, 0.0)
    assert (config.data.dataset, config.data.size) == ("face_landmarks_300w", 112)
    assert config.publish == "pfld-300w" and config.init_mean_shape
    assert config.build_steps is not None and config.build_steps < config.steps


def test_a_resumed_run_repeats_the_uninterrupted_one_and_every_net_learns(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(_config(steps=4), straight, data_dir=DATA, device="cpu")
    train(_config(steps=2), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=4), resumed, data_dir=DATA, device="cpu")

    assert (again.resumed_from, again.step) == (2, 4)
    a = checkpointing.load(straight / "checkpoints" / "step-000004.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000004.pt")
    for name in ("generator", "auxiliary"):
        state_a, state_b = a["networks"][name], b["networks"][name]
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a), name
    exported = torch.load(straight / GENERATOR_FILE, weights_only=True)
    assert exported.keys() == a["networks"]["generator"].keys()
    assert result.metrics == again.metrics and result.metrics_at_init == again.metrics_at_init
    init = result.metrics_at_init
    # init_mean_shape: the net starts near the mean shape's error, not a random layer's.
    assert init["val_nme"] < 2 * init["val_nme_mean_shape"] < 0.6
    assert set(result.last_losses) == {"loss", "l2"}
    assert all(math.isfinite(v) for v in result.last_losses.values())
    assert result.metrics["val_nme"] != init["val_nme"]
    # Both nets moved: the auxiliary one only through the pose weight.
    first = checkpointing.load(straight / "checkpoints" / "step-000002.pt")
    for name in ("generator", "auxiliary"):
        before, after = first["networks"][name], a["networks"][name]
        assert any(not torch.equal(before[k], after[k]) for k in before), name


def test_the_landmark_net_exports_and_passes_the_parity_gate(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model_card = card("pfld-300w")
    assert model_card.task == "face_landmarks" and model_card.weights.research_only
    net = build_network(model_card.architecture, **model_card.arch_kwargs).eval()
    path = export_onnx(net, model_card, tmp_path / "model.onnx")
    report = check_parity(net, path, model_card, probe_inputs(model_card, DATA), tolerance=1e-4)
    assert report.max_abs_err < 1e-4 and len(report.images) == 2


def test_a_batch_of_samples_collates() -> None:
    val = build_dataset("face_landmarks_300w", DATA, "val", 112)
    batch = collate([val.sample(i) for i in range(3)])
    assert batch["image"].shape == (3, 3, 112, 112) and batch["conditions"].shape == (3, 5)
