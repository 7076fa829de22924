"""Face-recognition losses: each margin by hand, the triplet and centre losses, and a few steps
of the recognition recipe with every loss (verification on held-aside ORL people and Yale)."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

import pytest
import torch

from gantry.core.training import RecognitionConfig, load_train_config
from gantry.core.training.schema import RecognitionLossName
from tests.paths import DATA
from trainer import checkpointing
from trainer.data import build_dataset
from trainer.data.identities import IdentityFaces, orl_people
from trainer.loop import train
from trainer.losses.recognition import (
    RECOGNITION_LOSSES,
    ArcFace,
    BatchHardTriplet,
    CenterLoss,
    CombinedMargin,
    CosFace,
    NormSoftmax,
    SphereFace,
    build_recognition_loss,
    combined_margin,
    psi,
)

SMALL = {
    "batch_size": 16,
    "log_every": 1,
    "checkpoint_every": 2,
    "sample_every": 2,
    "time_limit_s": None,
}


def _config(**overrides: Any) -> RecognitionConfig:
    config = load_train_config("recognition-orl", {**SMALL, **overrides})
    assert isinstance(config, RecognitionConfig)
    return config


def _unit(*angles: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings at ``angles`` from class 0's weight (2-d, weights e0 and e1), labels 0."""
    x = torch.tensor([[math.cos(a), math.sin(a)] for a in angles])
    return x, torch.zeros(len(angles), dtype=torch.long)


def _set_weights(head: torch.nn.Module) -> None:
    weight = head.get_parameter("weight")
    with torch.no_grad():
        weight.copy_(torch.eye(2))


def test_the_registry_and_the_config_name_the_same_losses() -> None:
    assert set(RECOGNITION_LOSSES.names()) == set(typing.get_args(RecognitionLossName))


def test_cosface_and_arcface_targets_by_hand() -> None:
    x, labels = _unit(0.3)
    for head, target in (
        (CosFace(2, 2, s=10.0, m=0.35), 10 * (math.cos(0.3) - 0.35)),
        (ArcFace(2, 2, s=10.0, m=0.5), 10 * math.cos(0.8)),
        (NormSoftmax(2, 2, s=10.0), 10 * math.cos(0.3)),
    ):
        _set_weights(head)
        loss, logits = head(x, labels)
        other = 10 * math.cos(math.pi / 2 - 0.3)
        expected = -math.log(math.exp(target) / (math.exp(target) + math.exp(other)))
        assert float(loss) == pytest.approx(expected, rel=1e-3), type(head).__name__
        assert logits is not None


def test_arcface_past_pi_falls_back_so_the_target_keeps_falling() -> None:
    theta = torch.linspace(0.0, math.pi, 1001)
    target = combined_margin(theta.cos(), 1.0, 0.5, 0.0)
    # cos(theta + m) would rise again past pi - m; the fallback keeps it falling.
    assert (target[1:] <= target[:-1] + 1e-6).all()
    far = math.pi - 0.2  # theta + m > pi: insightface's cos(theta) - m sin(m)
    value = float(combined_margin(torch.tensor([math.cos(far)]), 1.0, 0.5, 0.0)[0])
    assert value == pytest.approx(math.cos(far) - 0.5 * math.sin(0.5), rel=1e-5)
    near = float(combined_margin(torch.tensor([math.cos(0.4)]), 1.0, 0.5, 0.0)[0])
    assert near == pytest.approx(math.cos(0.9), rel=1e-5)


def test_the_combined_margin_with_m1_1_m3_0_is_arcface() -> None:
    x, labels = _unit(0.4, 1.2, 2.9)
    arc, combined = ArcFace(2, 2, s=8.0, m=0.3), CombinedMargin(2, 2, s=8.0, m1=1.0, m2=0.3, m3=0.0)
    _set_weights(arc)
    _set_weights(combined)
    assert float(arc(x, labels)[0]) == pytest.approx(float(combined(x, labels)[0]), rel=1e-6)


def test_l_softmax_psi_is_continuous_decreasing_and_cos_m_theta_near_zero() -> None:
    theta = torch.linspace(0.0, math.pi, 1001)
    for m in (2, 3, 4):
        values = psi(theta, m)
        assert (values[1:] <= values[:-1] + 1e-6).all(), m
        assert float(psi(torch.tensor(0.1), m)) == pytest.approx(math.cos(m * 0.1), rel=1e-6)
        assert float(values[-1]) == pytest.approx(-(2 * m - 1), abs=1e-4)


def test_sphereface_anneals_lambda_by_the_authors_schedule() -> None:
    head = SphereFace(2, 2, m=4, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0)
    assert head.annealing() == 1000.0
    x, labels = _unit(0.5, 0.7)
    for _ in range(10):
        head(x, labels)
    assert head.annealing() == pytest.approx(1000.0 / (1 + 0.12 * 10))
    head.iteration.fill_(10**6)
    assert head.annealing() == 5.0
    head.eval()
    head(x, labels)
    assert int(head.iteration) == 10**6  # evaluation does not advance the schedule


def test_the_triplet_loss_mines_the_hardest_pairs_of_the_batch() -> None:
    loss_fn = BatchHardTriplet(2, 0, margin=0.2)
    # Person 0 at angles 0 and 0.2, person 1 at 0.5 and 1.5: anchor 0's hardest positive is
    # 0.2 away in angle, its nearest negative 0.5.
    x, _ = _unit(0.0, 0.2, 0.5, 1.5)
    labels = torch.tensor([0, 0, 1, 1])
    chord = lambda a: 2 * math.sin(a / 2)  # noqa: E731
    hinges = [
        max(chord(0.2) - chord(0.5) + 0.2, 0),  # anchor at 0
        max(chord(0.2) - chord(0.3) + 0.2, 0),  # anchor at 0.2
        max(chord(1.0) - chord(0.3) + 0.2, 0),  # anchor at 0.5
        max(chord(1.0) - chord(1.3) + 0.2, 0),  # anchor at 1.5
    ]
    loss, logits = loss_fn(x, labels)
    assert float(loss) == pytest.approx(sum(hinges) / 4, rel=1e-5) and logits is None
    lonely = loss_fn(x[:2], torch.tensor([0, 1]))[0]
    assert float(lonely) == 0.0  # nobody has a positive in the batch


def test_the_centre_loss_pulls_centres_to_their_class_means() -> None:
    head = CenterLoss(2, 2, lambda_c=0.1, alpha=0.5)
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1])
    head(x, labels)
    # delta_0 = (0 - 1 + 0 - 3) / (1 + 2); c_0 = 0 - 0.5 delta_0
    torch.testing.assert_close(head.centres[0], torch.tensor([4 / 6, 0.0]))
    torch.testing.assert_close(head.centres[1], torch.tensor([0.0, 0.5]))


@pytest.mark.parametrize("name", RECOGNITION_LOSSES.names())
def test_every_loss_backpropagates_into_the_embedding(name: str) -> None:
    head = build_recognition_loss(name, 8, 3)
    x = torch.randn(6, 8, requires_grad=True, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    loss, _ = head(x, labels)
    loss.backward()
    assert math.isfinite(float(loss)) and x.grad is not None and x.grad.abs().sum() > 0


def test_the_held_aside_people_are_every_fourth_and_never_trained_on() -> None:
    root = DATA / "train" / "att_orl_faces"
    train_people, held = orl_people(root, "train"), orl_people(root, "val")
    assert not set(train_people) & set(held) and all(int(p[1:]) % 4 == 0 for p in held)
    faces = build_dataset("att_orl_identities", DATA, "train", 64)
    assert isinstance(faces, IdentityFaces) and faces.classes == len(train_people)
    assert len(faces) == 10 * len(train_people)


@pytest.mark.parametrize("name", RECOGNITION_LOSSES.names())
def test_two_steps_of_each_loss_learn_and_measure_verification(tmp_path: Path, name: str) -> None:
    result = train(_config(steps=2, loss=name), tmp_path / name, data_dir=DATA, device="cpu")
    assert all(math.isfinite(v) for v in result.last_losses.values())
    for figures in (result.metrics_at_init, result.metrics):
        assert {"val_auc", "val_tar_far1", "yale_auc", "yale_accuracy", "threshold"} <= set(figures)
        assert 0 <= figures["val_auc"] <= 1 and 0 <= figures["yale_tar_far1"] <= 1
    assert result.metrics != result.metrics_at_init


def test_a_resumed_sphereface_run_repeats_the_uninterrupted_one(tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    result = train(_config(steps=4, loss="sphereface"), straight, data_dir=DATA, device="cpu")
    train(_config(steps=2, loss="sphereface"), resumed, data_dir=DATA, device="cpu")
    again = train(_config(steps=4, loss="sphereface"), resumed, data_dir=DATA, device="cpu")
    a = checkpointing.load(straight / "checkpoints" / "step-000004.pt")
    b = checkpointing.load(resumed / "checkpoints" / "step-000004.pt")
    for name in ("generator", "head"):
        assert all(
            torch.equal(a["networks"][name][k], b["networks"][name][k]) for k in a["networks"][name]
        )
    assert int(a["networks"]["head"]["iteration"]) == 4
    assert result.metrics == again.metrics
