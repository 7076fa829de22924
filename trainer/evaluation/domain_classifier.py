"""A small CNN that tells two image domains apart, trained on real images to judge translations.

The measure of an unpaired translator A → B that needs no paired ground truth: train a
classifier on real faces of both domains (the training split), check it on held-aside real
faces (its own accuracy bounds what it can say), then count how many translated held-aside
A faces it calls B. Training is seeded and uses its own random generator, so it neither reads
nor moves the global RNG that the training loop seeds per step; the weights are cached under
a digest of the training faces and of everything below that shapes them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CLASSIFIER_STEPS = 300
CLASSIFIER_BATCH = 32  # half from each domain: the domains need not be the same size
CLASSIFIER_LR = 1e-3
CLASSIFIER_SEED = 0
# Bump when the network or its training changes: it is part of the cache key.
CLASSIFIER_VERSION = 1
_WIDTHS = (16, 32, 64, 128)
# Hair colour is a coarse cue: judging at 32 px is four times cheaper than at 64 and as good.
CLASSIFIER_INPUT_SIZE = 32


class DomainClassifier(nn.Module):
    """Resize to ``input_size``, four stride-2 conv, batch-norm, ReLU blocks, global average
    pool, one logit. A logit above 0 says domain B.

    Args:
        widths: channels of the four blocks.
        input_size: the square size images are resized to (antialiased bilinear) first.
    """

    def __init__(
        self, widths: tuple[int, ...] = _WIDTHS, input_size: int = CLASSIFIER_INPUT_SIZE
    ) -> None:
        super().__init__()
        self.input_size = input_size
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] → (N,) logits of domain B."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def _signed_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] as float in [-1, 1]; float images as they are."""
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images


def classifier_digest(faces_a: torch.Tensor, faces_b: torch.Tensor, steps: int, seed: int) -> str:
    """The cache key of a classifier: the faces' bytes and shapes, the training settings."""
    digest = hashlib.sha256()
    digest.update(
        f"v{CLASSIFIER_VERSION} {steps} {seed} {CLASSIFIER_BATCH} {CLASSIFIER_LR}".encode()
    )
    for faces in (faces_a, faces_b):
        digest.update(str(tuple(faces.shape)).encode())
        digest.update(faces.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_domain_classifier(
    faces_a: torch.Tensor,
    faces_b: torch.Tensor,
    *,
    steps: int = CLASSIFIER_STEPS,
    seed: int = CLASSIFIER_SEED,
    device: torch.device | None = None,
) -> DomainClassifier:
    """Train a :class:`DomainClassifier` on real faces of domains A (label 0) and B (label 1).

    Every batch holds as many faces of A as of B (drawn with replacement), each mirrored
    left-right with probability 0.5; Adam at :data:`CLASSIFIER_LR`.

    Args:
        faces_a: (N_A, 3, H, W), uint8 in [0, 255] or float in [-1, 1].
        faces_b: (N_B, 3, H, W), the same.
        steps: optimiser steps.
        seed: seeds the initial weights and the batches (the global RNG is left untouched).
        device: where to train (default CPU).

    Returns:
        The classifier in eval mode on ``device``.
    """
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DomainClassifier()
    classifier.to(device).train()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=CLASSIFIER_LR)
    half = CLASSIFIER_BATCH // 2
    labels = torch.cat([torch.zeros(half), torch.ones(half)]).to(device)
    for _ in range(steps):
        pick_a = torch.randint(len(faces_a), (half,), generator=generator)
        pick_b = torch.randint(len(faces_b), (half,), generator=generator)
        batch = _signed_unit(torch.cat([faces_a[pick_a], faces_b[pick_b]]))
        mirror = (torch.rand(len(batch), generator=generator) < 0.5).view(-1, 1, 1, 1)
        batch = torch.where(mirror, batch.flip(3), batch).to(device)
        loss = F.binary_cross_entropy_with_logits(classifier(batch), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval()


def cached_domain_classifier(
    faces_a: torch.Tensor,
    faces_b: torch.Tensor,
    cache_dir: Path | None,
    *,
    steps: int = CLASSIFIER_STEPS,
    seed: int = CLASSIFIER_SEED,
    device: torch.device | None = None,
) -> DomainClassifier:
    """:func:`train_domain_classifier`, or its weights from ``cache_dir`` if trained before.

    The file is ``domain-classifier-<digest>.pt`` (:func:`classifier_digest`), written
    atomically; ``cache_dir=None`` trains without caching.
    """
    device = device or torch.device("cpu")
    path = None
    if cache_dir is not None:
        digest = classifier_digest(faces_a, faces_b, steps, seed)
        path = cache_dir / f"domain-classifier-{digest[:16]}.pt"
        if path.is_file():
            classifier = DomainClassifier()
            classifier.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return classifier.to(device).eval()
    classifier = train_domain_classifier(faces_a, faces_b, steps=steps, seed=seed, device=device)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(classifier.state_dict(), partial)
        os.replace(partial, path)
    return classifier


@torch.no_grad()
def predicts_b(classifier: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Whether ``classifier`` (eval mode) calls each of ``images`` (N, 3, H, W) domain B."""
    device = next(classifier.parameters()).device
    logits = [classifier(chunk.to(device)).float() for chunk in images.split(batch_size)]
    return torch.cat(logits).cpu() > 0
