"""Train the tiny pix2pixHD facade model (G + E against a multi-scale D) on CPU.

The recipe is pix2pixHD's, shrunk: LSGAN (its default, ``--no_lsgan`` off) plus the
discriminator feature-matching loss (``--lambda_feat 10``), Adam(2e-4, beta1 0.5), the
encoder trained jointly with G, one image per step. The VGG perceptual loss is off: it needs
torchvision's VGG19 weights, which this project does not install.

CMP facades ship no instance maps. We use the label map as the instance map: the boundary
channel then outlines class regions, and the encoder pools one feature vector per class, as
pix2pixHD's ``--label_feat`` does. Label PNG values 1..12 become classes 0..11.

A run is deterministic for a given config: weights come from ``torch.manual_seed(seed)``, the
sample order from a seeded permutation, nothing else draws random numbers, and the loop runs
on one intra-op thread. With two threads the weights differed in their low bits between two
processes (the same run in one process repeated exactly), and the networks are too small for
a second thread to pay off anyway. Other CPUs (other SIMD kernels) may still differ slightly.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from PIL import Image
from torch import nn

from gantry.core.labelmaps import CMP_FACADE_CLASSES, cmp_facade_classes, generator_input
from gantry.core.settings import get_settings
from trainer.archs.pix2pixhd import (
    Encoder,
    LocalEnhancer,
    MultiscaleDiscriminator,
    facades_tiny_discriminator,
    facades_tiny_encoder,
    facades_tiny_generator,
)

FACADES_SUBDIR = Path("train") / "cmp_facades"
# 100 steps at 128x128 take about 12 s on one CPU thread and bring the val L1 from 0.45 to
# 0.29; longer runs hardly lower it further (a GAN, not a regression), and this one is cheap
# enough to run inside `gantry models build` when the cache misses.
DEFAULT_STEPS = 100
DEFAULT_SIZE = (128, 128)
# Bump when the recipe changes in a way the config does not capture, so cached weights
# trained by an older recipe are not reused.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class FacadesTinyConfig:
    """Everything that determines a training run's result.

    Attributes:
        steps: optimiser steps (one image each by default).
        seed: seeds the weight init and the sample order.
        size: (H, W) every pair is resized to; multiples of 8 (the tiny G's constraint).
        batch_size: images per step (pix2pixHD's ``--batchSize`` default is 1).
        lr: Adam learning rate for G + E and for D.
        beta1: Adam beta1.
        lambda_feat: weight of the feature-matching loss.
        eval_images: val pairs the L1 before/after is measured on.
    """

    steps: int = DEFAULT_STEPS
    seed: int = 0
    size: tuple[int, int] = DEFAULT_SIZE
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_feat: float = 10.0
    eval_images: int = 4

    def digest(self, data_fingerprint: str = "") -> str:
        """Hex SHA-256 of the config, the recipe version and (optionally) the data."""
        payload = {"recipe": RECIPE_VERSION, "config": asdict(self), "data": data_fingerprint}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class TrainedFacadesTiny:
    """The networks a run produced and what it measured.

    Attributes:
        generator: the tiny LocalEnhancer (``pix2pixhd_facades_tiny``).
        encoder: the feature encoder trained with it.
        discriminator: the multi-scale D it was trained against.
        history: per step, the losses ``g_gan``, ``g_feat``, ``d_real``, ``d_fake``.
        l1_before: mean |G(x) - photo| on the eval pairs before training, in [-1, 1] units,
            with the encoder's features of the photo (reconstruction, as training sees it).
        l1_after: the same after training.
        l1_zero_features_before: L1 with all feature channels zero (a request that names no
            style), before training.
        l1_zero_features_after: the same after training.
        seconds: wall time of the optimisation loop.
    """

    generator: LocalEnhancer
    encoder: Encoder
    discriminator: MultiscaleDiscriminator
    history: list[dict[str, float]] = field(default_factory=list)
    l1_before: float = float("nan")
    l1_after: float = float("nan")
    l1_zero_features_before: float = float("nan")
    l1_zero_features_after: float = float("nan")
    seconds: float = 0.0


def facades_dir(data_dir: Path | None = None) -> Path:
    """``<data_dir>/train/cmp_facades`` (``{train,val}/{label,photo}`` inside)."""
    return (data_dir or get_settings().data_dir) / FACADES_SUBDIR


def pair_names(split_dir: Path) -> list[str]:
    """Sorted stems that have both ``label/<stem>.png`` and ``photo/<stem>.jpg``."""
    labels = {p.stem for p in (split_dir / "label").glob("*.png")}
    photos = {p.stem for p in (split_dir / "photo").glob("*.jpg")}
    names = sorted(labels & photos)
    if not names:
        raise FileNotFoundError(f"no label/photo pairs under {split_dir}")
    return names


def data_fingerprint(root: Path) -> str:
    """Hex SHA-256 over every pair's name and file sizes: cheap, and changes with the data."""
    digest = hashlib.sha256()
    for split in ("train", "val"):
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for name in pair_names(split_dir):
            label = (split_dir / "label" / f"{name}.png").stat().st_size
            photo = (split_dir / "photo" / f"{name}.jpg").stat().st_size
            digest.update(f"{split}/{name}:{label}:{photo};".encode())
    return digest.hexdigest()


def load_pair(
    split_dir: Path, name: str, size: tuple[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """One pair at ``size``: (H, W) class indices and (3, H, W) photo in [-1, 1].

    Labels are resized with NEAREST (class ids must not blend), photos with BICUBIC, as
    pix2pixHD's data loader does.
    """
    h, w = size
    with Image.open(split_dir / "label" / f"{name}.png") as im:
        # Palette PNG: the pixel values are the class ids; convert("RGB") would lose them.
        label = np.asarray(im.resize((w, h), Image.Resampling.NEAREST))
    with Image.open(split_dir / "photo" / f"{name}.jpg") as im:
        photo = np.asarray(im.convert("RGB").resize((w, h), Image.Resampling.BICUBIC))
    image = photo.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return cmp_facade_classes(label), image


def label_channels(classes: NDArray[np.int64]) -> NDArray[np.float32]:
    """One-hot + boundary (the label map as instance map): the D's label input and G's first
    13 channels, built by the same code the gateway uses."""
    return generator_input(classes, None, None, n_classes=len(CMP_FACADE_CLASSES), feat_num=0)


@dataclass(frozen=True)
class _Batch:
    labels: torch.Tensor  # (N, 13, H, W): one-hot + boundary
    inst: torch.Tensor  # (N, 1, H, W): class ids, standing in for instance ids
    photos: torch.Tensor  # (N, 3, H, W) in [-1, 1]


def _batch(split_dir: Path, names: list[str], size: tuple[int, int]) -> _Batch:
    pairs = [load_pair(split_dir, name, size) for name in names]
    return _Batch(
        labels=torch.from_numpy(np.stack([label_channels(c) for c, _ in pairs])),
        inst=torch.from_numpy(np.stack([c for c, _ in pairs]))[:, None],
        photos=torch.from_numpy(np.stack([p for _, p in pairs])),
    )


def lsgan_loss(predictions: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """LSGAN on each scale's patch scores (the last map), summed over scales as upstream does."""
    target = 1.0 if real else 0.0
    losses = [F.mse_loss(scale[-1], torch.full_like(scale[-1], target)) for scale in predictions]
    return torch.stack(losses).sum()


def feature_matching_loss(
    fake: list[list[torch.Tensor]],
    real: list[list[torch.Tensor]],
    n_layers: int,
    lambda_feat: float,
) -> torch.Tensor:
    """L1 between D's intermediate maps on fake and real, pix2pixHD's weighting.

    Each scale weighs ``1 / num_D`` and each layer ``4 / (n_layers + 1)``; the patch scores
    (last map) are left to the GAN loss. Real maps are targets, so no gradient goes to them.
    """
    layer_weight = 4.0 / (n_layers + 1)
    scale_weight = 1.0 / len(fake)
    terms = [
        F.l1_loss(f, r.detach())
        for fake_scale, real_scale in zip(fake, real, strict=True)
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True)
    ]
    return torch.stack(terms).sum() * layer_weight * scale_weight * lambda_feat


@torch.no_grad()
def _l1(generator: nn.Module, encoder: Encoder, batch: _Batch) -> tuple[float, float]:
    """(L1 with the encoder's features of the photo, L1 with zero features)."""
    feats = encoder(batch.photos, batch.inst)
    encoded = generator(torch.cat([batch.labels, feats], 1))
    zero = generator(torch.cat([batch.labels, torch.zeros_like(feats)], 1))
    return (
        float((encoded - batch.photos).abs().mean()),
        float((zero - batch.photos).abs().mean()),
    )


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run PyTorch ops on one intra-op thread, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_facades_tiny(
    config: FacadesTinyConfig | None = None, data_dir: Path | None = None
) -> TrainedFacadesTiny:
    """Train ``pix2pixhd_facades_tiny`` with its encoder and discriminator, reproducibly.

    Args:
        config: the run; defaults to :class:`FacadesTinyConfig`'s defaults.
        data_dir: the shared data root (default: ``get_settings().data_dir``).

    Returns:
        The trained networks (G and E in eval mode), loss history and L1 before/after.
    """
    with _one_thread():
        return _run(config or FacadesTinyConfig(), data_dir)


def _run(cfg: FacadesTinyConfig, data_dir: Path | None) -> TrainedFacadesTiny:
    root = facades_dir(data_dir)
    train_dir, val_dir = root / "train", root / "val"
    eval_dir = val_dir if val_dir.is_dir() else train_dir

    torch.manual_seed(cfg.seed)
    generator = facades_tiny_generator()
    encoder = facades_tiny_encoder()
    discriminator = facades_tiny_discriminator()
    # As upstream: G and E share one optimiser (E learns through G's losses only).
    opt_g = torch.optim.Adam(
        [*generator.parameters(), *encoder.parameters()], lr=cfg.lr, betas=(cfg.beta1, 0.999)
    )
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))

    eval_batch = _batch(eval_dir, pair_names(eval_dir)[: cfg.eval_images], cfg.size)
    before = _l1(generator, encoder, eval_batch)

    names = pair_names(train_dir)
    order = np.random.default_rng(cfg.seed).permutation(len(names))
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for step in range(cfg.steps):
        picks = [
            names[order[(step * cfg.batch_size + k) % len(names)]] for k in range(cfg.batch_size)
        ]
        batch = _batch(train_dir, picks, cfg.size)
        feats = encoder(batch.photos, batch.inst)
        fake = generator(torch.cat([batch.labels, feats], 1))

        # D sees label channels + image; never the features (as pix2pixHD's discriminate).
        pred_fake_d = discriminator(torch.cat([batch.labels, fake.detach()], 1))
        pred_real = discriminator(torch.cat([batch.labels, batch.photos], 1))
        loss_d_fake = lsgan_loss(pred_fake_d, real=False)
        loss_d_real = lsgan_loss(pred_real, real=True)

        pred_fake = discriminator(torch.cat([batch.labels, fake], 1))
        loss_g_gan = lsgan_loss(pred_fake, real=True)
        loss_g_feat = feature_matching_loss(
            pred_fake, pred_real, discriminator.n_layers, cfg.lambda_feat
        )

        # Upstream's order: step G on this forward pass, then D (whose losses only involve
        # the detached fake, so G's update does not leak into them).
        opt_g.zero_grad(set_to_none=True)
        (loss_g_gan + loss_g_feat).backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        opt_d.step()
        history.append(
            {
                "g_gan": loss_g_gan.item(),
                "g_feat": loss_g_feat.item(),
                "d_real": loss_d_real.item(),
                "d_fake": loss_d_fake.item(),
            }
        )
    seconds = time.perf_counter() - start

    generator.eval()
    encoder.eval()
    after = _l1(generator, encoder, eval_batch)
    return TrainedFacadesTiny(
        generator=generator,
        encoder=encoder,
        discriminator=discriminator,
        history=history,
        l1_before=before[0],
        l1_after=after[0],
        l1_zero_features_before=before[1],
        l1_zero_features_after=after[1],
        seconds=seconds,
    )


def train_facades_tiny(
    steps: int = DEFAULT_STEPS, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE
) -> nn.Module:
    """Train the tiny facade generator and return it (eval mode, CPU).

    Args:
        steps: optimiser steps, one image each.
        seed: weight init and sample order.
        size: (H, W) training resolution; multiples of 8, at least 16.

    Returns:
        The ``pix2pixhd_facades_tiny`` generator: (N, 16, H, W) → (N, 3, H, W) RGB in [-1, 1].
    """
    return run_facades_tiny(FacadesTinyConfig(steps=steps, seed=seed, size=size)).generator
