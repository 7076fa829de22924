"""PFLD (Guo et al. 2019): 68-point landmarks from a face crop, trained as polarisZhao/
PFLD-pytorch's ``train.py`` does, on the 300-W faces of ``../shared/data`` (research only).

Networks (:mod:`trainer.archs.pfld`): the landmark net (``generator_key``: the network a run
evaluates, exports and serves) and the auxiliary pose net, which reads the landmark net's
28x28 map and exists only in training. One Adam (lr 1e-4, weight decay 1e-6) updates both.

**A loop step** draws a batch of jittered crops (:class:`trainer.data.landmarks.Landmarks300W`:
scale, shift, rotation and flips; the head pose of each from its points by ``cv2.solvePnP``
against a mean 3D face), runs both nets and minimises PFLD's loss
(:func:`trainer.losses.pfld_loss`): each face's squared point error, weighted by the pose
deviation ``sum_k (1 - cos(theta_k))`` between the auxiliary net's yaw/pitch/roll and the
truth, and by the reciprocal share of its conditions among the training faces (frontal,
profile, head up or down, open mouth: what 68 points tell, as 300-W has no attribute labels).
The randomness (the crops' jitter) comes from the global generator the loop seeds per step,
so a resumed run repeats the uninterrupted one exactly.

With ``init_mean_shape`` (the shipped config) the point layer's bias starts at the mean
training shape, so the net starts at the mean shape's error (NME 0.19 on the held-aside
faces) rather than at a random layer's (1.5); the reference starts from PyTorch's default
initialisation.

**Evaluation** on the held-aside faces (fixed crops, no jitter): the NME over the
outer-eye-corner distance and the failure rate at 0.08, next to the mean training shape's
(:mod:`trainer.evaluation.landmarks`), and the auxiliary net's mean pose error in degrees.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gantry.core.training import PFLDConfig
from trainer.archs import build_network
from trainer.archs.pfld import PFLD, PFLDAuxiliary
from trainer.data import Sample, TrainingDataset, collate
from trainer.data.landmarks import (
    CONDITIONS,
    Landmarks300W,
    conditions,
    crop_transform,
    head_pose,
)
from trainer.distributed import unwrap
from trainer.evaluation.landmarks import draw_points, landmark_figures
from trainer.losses import pfld_loss
from trainer.recipes import RECIPES
from trainer.recipes.base import Recipe

SAMPLE_ROWS = 4
TRUTH_COLOUR = (-1.0, 1.0, -1.0)  # green
POINTS_COLOUR = (1.0, -1.0, -1.0)  # red


def features_and_points(net: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PFLD's 28x28 map and points, through ``net``'s own forward (so DDP sees the call)."""
    out = net(images, with_features=True)
    assert isinstance(out, tuple)
    return out


def condition_weights(dataset: Landmarks300W, on: bool) -> torch.Tensor:
    """Per-condition weights: the reciprocal of each condition's share of the training faces
    (their un-jittered crops), scaled so the mean face weighs 1; all ones when off."""
    if not on:
        return torch.ones(len(CONDITIONS))
    flags = np.stack(
        [conditions(f.points, head_pose(f.points, 256.0)) for f in dataset.faces]
    ).astype(np.float64)
    share = flags.mean(axis=0)
    weights = np.where(share > 0, 1.0 / np.maximum(share, 1e-12), 0.0)
    mean_face = float((flags @ weights).mean())
    return torch.from_numpy(weights / mean_face).float()


@RECIPES.register("pfld")
class PFLDRecipe(Recipe):
    """PFLD's landmark net and auxiliary pose net under its weighted landmark loss."""

    config_type = PFLDConfig
    config: PFLDConfig

    def build(self) -> None:
        cfg = self.config
        net = build_network(cfg.network)
        if not isinstance(net, PFLD):
            raise TypeError(f"pfld needs a PFLD network, not {cfg.network}")
        auxiliary = build_network(cfg.auxiliary, in_channels=net.aux_channels)
        if not isinstance(auxiliary, PFLDAuxiliary):
            raise TypeError(f"pfld needs a PFLD auxiliary net, not {cfg.auxiliary}")
        self.add("generator", net, None)
        self.add("auxiliary", auxiliary, None)
        params = [*net.parameters(), *auxiliary.parameters()]
        optim = cfg.optim
        self.add_optimizer(
            "generator",
            torch.optim.Adam(
                params, lr=optim.lr, betas=(optim.beta1, optim.beta2), weight_decay=cfg.weight_decay
            ),
        )
        size = cfg.data.size
        train, val = self.splits(Landmarks300W, "68-point faces")
        self._train = train
        self.face_weights = condition_weights(train, cfg.condition_weights).to(self.device)
        held = [val.sample(i) for i in range(min(cfg.data.val_images, len(val)))]
        self._val = {k: v.to(self.device) for k, v in collate(held).items()}
        self.mean_shape = self._mean_training_shape(train, size).to(self.device)
        if cfg.init_mean_shape:
            with torch.no_grad():
                net.fc.bias.copy_(self.mean_shape.flatten())
        if cfg.pose_floor == 0:
            self.notes.append("pose weight as the reference: no floor")

    @staticmethod
    def _mean_training_shape(train: Landmarks300W, size: int) -> torch.Tensor:
        """The mean of the training faces' points in their un-jittered crops (relative)."""
        shapes = []
        for face in train.faces:
            matrix = crop_transform(face.points, size, None)
            shapes.append((face.points @ matrix[:, :2].T + matrix[:, 2]) / size)
        return torch.from_numpy(np.mean(shapes, axis=0)).float()

    def train_dataset(self) -> TrainingDataset:
        return self._train

    def generator_architecture(self) -> str:
        return self.config.network

    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        net, auxiliary = self.networks["generator"], self.networks["auxiliary"]
        with self.autocast():
            features, points = features_and_points(net, batch["image"])
            pose = auxiliary(features)
        weights = batch["conditions"] @ self.face_weights
        loss, squared = pfld_loss(
            points.float(),
            batch["points"],
            pose.float(),
            batch["pose"],
            weights,
            floor=self.config.pose_floor,
        )
        self.optimize("generator", loss)
        return {"loss": loss.item(), "l2": squared.item()}

    @torch.no_grad()
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """NME and failure rate on the held-aside faces (and the mean shape's)."""
        features, points = features_and_points(generator, self._val["image"])
        figures = landmark_figures(points, self._val["points"], self.mean_shape)
        auxiliary = self.networks["auxiliary"]
        was_training = auxiliary.training
        pose = auxiliary.eval()(features)
        auxiliary.train(was_training)
        error = (pose - self._val["pose"]).abs().mean()
        figures["val_pose_error_deg"] = float(error) * 180.0 / math.pi
        return figures

    @torch.no_grad()
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Per held-aside face: the crop with the true points, and with the net's."""
        device = next(unwrap(generator).parameters()).device
        images = self._val["image"][:SAMPLE_ROWS].to(device)
        points = generator(images).float()
        truth = self._val["points"][:SAMPLE_ROWS]
        return [
            [draw_points(i, t, TRUTH_COLOUR), draw_points(i, p, POINTS_COLOUR)]
            for i, t, p in zip(images, truth, points, strict=True)
        ]
