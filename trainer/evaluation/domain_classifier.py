"""A small CNN that tells image domains apart, trained on real images to judge translations.

The measure of a translator that needs no paired ground truth: train a classifier on real
faces (the training split), check it on held-aside real faces (its own accuracy bounds what
it can say), then count how many translated held-aside faces it calls the target domain.
Three trainings of the one network:

* :func:`train_domain_classifier`: one logit, domain A against domain B (CycleGAN's black
  against blond hair);
* :func:`train_attribute_classifier`: one logit per attribute, each a yes/no of its own
  (StarGAN's selected CelebA attributes: hair colours, sex, age), from all the faces with
  their labels;
* :func:`train_multi_domain_classifier`: one logit per domain, exactly one domain per face
  (StarGAN v2's hair colours), the largest logit its answer.

Training is seeded and uses its own random generator, so it neither reads nor moves the
global RNG that the training loop seeds per step; the weights are cached under a digest of
the training faces (and labels) and of everything below that shapes them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
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
# StarGAN's five attributes on the 4,700 training faces at 64 px, balanced accuracy on the
# 300 held-aside faces (mean of black, blond, brown hair, male, young), measured: 32 px 600
# steps 0.822, 1,200 steps 0.829; 64 px 600 steps 0.801. Age is the hard one (0.61-0.63).
ATTRIBUTE_CLASSIFIER_STEPS = 600
ATTRIBUTE_CLASSIFIER_INPUT_SIZE = CLASSIFIER_INPUT_SIZE
ATTRIBUTE_CLASSIFIER_VERSION = 1


class DomainClassifier(nn.Module):
    """Resize to ``input_size``, four stride-2 conv, batch-norm, ReLU blocks, global average
    pool, ``outputs`` logits. With one output a logit above 0 says domain B; with several,
    logit ``i`` above 0 says attribute ``i`` is present.

    Args:
        widths: channels of the four blocks.
        input_size: the square size images are resized to (antialiased bilinear) first.
        outputs: logits (1: two domains; one per attribute otherwise).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = _WIDTHS,
        input_size: int = CLASSIFIER_INPUT_SIZE,
        outputs: int = 1,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.outputs = outputs
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
        self.head = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images in [-1, 1] → (N,) logits of domain B (one output), or
        (N, outputs) logits of the attributes."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        logits = self.head(self.features(x).mean(dim=(2, 3)))
        return logits.squeeze(1) if self.outputs == 1 else logits


def _signed_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] as float in [-1, 1]; float images as they are."""
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images


def _digest(settings: str, tensors: tuple[torch.Tensor, ...]) -> str:
    digest = hashlib.sha256()
    digest.update(settings.encode())
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def classifier_digest(faces_a: torch.Tensor, faces_b: torch.Tensor, steps: int, seed: int) -> str:
    """The cache key of a classifier: the faces' bytes and shapes, the training settings."""
    settings = f"v{CLASSIFIER_VERSION} {steps} {seed} {CLASSIFIER_BATCH} {CLASSIFIER_LR}"
    return _digest(settings, (faces_a, faces_b))


def attribute_classifier_digest(
    faces: torch.Tensor, labels: torch.Tensor, steps: int, seed: int
) -> str:
    """The cache key of an attribute classifier: faces, labels, the training settings."""
    settings = (
        f"attributes v{ATTRIBUTE_CLASSIFIER_VERSION} {steps} {seed} {CLASSIFIER_BATCH} "
        f"{CLASSIFIER_LR} {ATTRIBUTE_CLASSIFIER_INPUT_SIZE}"
    )
    return _digest(settings, (faces, labels))


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


def _cached(
    path: Path | None,
    blank: Callable[[], DomainClassifier],
    train: Callable[[], DomainClassifier],
    device: torch.device,
) -> DomainClassifier:
    """``blank()`` with the weights at ``path`` if there are any, else ``train()`` (saved
    there atomically when ``path`` is given). The global RNG is left as it was."""
    if path is not None and path.is_file():
        with torch.random.fork_rng(devices=[]):
            classifier = blank()
        classifier.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return classifier.to(device).eval()
    classifier = train()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(classifier.state_dict(), partial)
        os.replace(partial, path)
    return classifier


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
    return _cached(
        path,
        DomainClassifier,
        lambda: train_domain_classifier(faces_a, faces_b, steps=steps, seed=seed, device=device),
        device,
    )


def train_attribute_classifier(
    faces: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = ATTRIBUTE_CLASSIFIER_STEPS,
    seed: int = CLASSIFIER_SEED,
    device: torch.device | None = None,
) -> DomainClassifier:
    """Train a :class:`DomainClassifier` with one logit per attribute on labelled real faces.

    Batches of :data:`CLASSIFIER_BATCH` faces are drawn uniformly with replacement, each
    mirrored left-right with probability 0.5. The loss is binary cross-entropy per
    attribute with the positives weighted by the training set's negatives / positives, so a
    rare attribute (blond hair: 13% of the faces) counts as much as it is absent and the
    classifier aims at balanced accuracy; Adam at :data:`CLASSIFIER_LR`.

    Args:
        faces: (N, 3, H, W), uint8 in [0, 255] or float in [-1, 1].
        labels: (N, c) 0/1 labels.
        steps: optimiser steps.
        seed: seeds the initial weights and the batches (the global RNG is left untouched).
        device: where to train (default CPU).

    Returns:
        The classifier (``outputs=c``) in eval mode on ``device``.

    Raises:
        ValueError: an attribute no face (or every face) has: nothing to learn.
    """
    device = device or torch.device("cpu")
    labels = labels.float()
    positives = labels.sum(0)
    if bool(((positives == 0) | (positives == len(labels))).any()):
        raise ValueError("every attribute needs faces with it and faces without it")
    pos_weight = ((len(labels) - positives) / positives).to(device)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DomainClassifier(
            input_size=ATTRIBUTE_CLASSIFIER_INPUT_SIZE, outputs=labels.shape[1]
        )
    classifier.to(device).train()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=CLASSIFIER_LR)
    for _ in range(steps):
        pick = torch.randint(len(faces), (CLASSIFIER_BATCH,), generator=generator)
        batch = _signed_unit(faces[pick])
        mirror = (torch.rand(len(batch), generator=generator) < 0.5).view(-1, 1, 1, 1)
        batch = torch.where(mirror, batch.flip(3), batch).to(device)
        loss = F.binary_cross_entropy_with_logits(
            classifier(batch), labels[pick].to(device), pos_weight=pos_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval()


def cached_attribute_classifier(
    faces: torch.Tensor,
    labels: torch.Tensor,
    cache_dir: Path | None,
    *,
    steps: int = ATTRIBUTE_CLASSIFIER_STEPS,
    seed: int = CLASSIFIER_SEED,
    device: torch.device | None = None,
) -> DomainClassifier:
    """:func:`train_attribute_classifier`, or its weights from ``cache_dir`` if trained
    before (``attribute-classifier-<digest>.pt``, :func:`attribute_classifier_digest`)."""
    device = device or torch.device("cpu")
    path = None
    if cache_dir is not None:
        digest = attribute_classifier_digest(faces, labels, steps, seed)
        path = cache_dir / f"attribute-classifier-{digest[:16]}.pt"
    outputs = labels.shape[1]
    return _cached(
        path,
        lambda: DomainClassifier(input_size=ATTRIBUTE_CLASSIFIER_INPUT_SIZE, outputs=outputs),
        lambda: train_attribute_classifier(faces, labels, steps=steps, seed=seed, device=device),
        device,
    )


@torch.no_grad()
def predicts(classifier: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Whether each logit of ``classifier`` (eval mode) is above 0 for each of ``images``
    (N, 3, H, W): (N,) for a two-domain classifier, (N, c) for an attribute classifier."""
    device = next(classifier.parameters()).device
    logits = [classifier(chunk.to(device)).float() for chunk in images.split(batch_size)]
    return torch.cat(logits).cpu() > 0


def predicts_b(classifier: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Whether ``classifier`` (eval mode) calls each of ``images`` (N, 3, H, W) domain B."""
    return predicts(classifier, images, batch_size)


# --- several domains, one class each ----------------------------------------------------
# StarGAN v2's three hair colours on the 2,566 single-colour training faces at 64 px, recall
# on the 297 held-aside ones (black, blond, brown), measured at 600 steps: one logit per
# attribute with binary cross-entropy (train_attribute_classifier) judged by the largest
# logit (1.00, 0.86, 0.42), balanced 0.76, leaning to the largest domain; this one, softmax
# cross-entropy on domain-balanced batches, (0.96, 0.82, 0.65), balanced 0.81.
MULTI_DOMAIN_CLASSIFIER_STEPS = 600
MULTI_DOMAIN_CLASSIFIER_VERSION = 1


def multi_domain_classifier_digest(
    faces: torch.Tensor, domains: torch.Tensor, steps: int, seed: int
) -> str:
    """The cache key of a multi-domain classifier: faces, domains, the training settings."""
    settings = (
        f"domains v{MULTI_DOMAIN_CLASSIFIER_VERSION} {steps} {seed} {CLASSIFIER_BATCH} "
        f"{CLASSIFIER_LR} {CLASSIFIER_INPUT_SIZE}"
    )
    return _digest(settings, (faces, domains))


def train_multi_domain_classifier(
    faces: torch.Tensor,
    domains: torch.Tensor,
    *,
    steps: int = MULTI_DOMAIN_CLASSIFIER_STEPS,
    seed: int = CLASSIFIER_SEED,
    device: torch.device | None = None,
) -> DomainClassifier:
    """Train a :class:`DomainClassifier` with one logit per domain, softmax cross-entropy.

    Every batch holds as many faces of each domain (``CLASSIFIER_BATCH // K``, drawn with
    replacement, each mirrored with probability 0.5), so the domains weigh the same whatever
    their sizes and the largest logit aims at balanced accuracy; Adam at
    :data:`CLASSIFIER_LR`.

    Args:
        faces: (N, 3, H, W), uint8 in [0, 255] or float in [-1, 1].
        domains: (N,) domain indices 0 .. K-1.
        steps: optimiser steps.
        seed: seeds the initial weights and the batches (the global RNG is left untouched).
        device: where to train (default CPU).

    Returns:
        The classifier (``outputs=K``) in eval mode on ``device``.

    Raises:
        ValueError: fewer than two domains, or a domain without faces.
    """
    device = device or torch.device("cpu")
    domains = domains.long()
    k = int(domains.max()) + 1 if len(domains) else 0
    by_domain = [torch.nonzero(domains == d).flatten() for d in range(k)]
    if k < 2 or any(len(ids) == 0 for ids in by_domain):
        raise ValueError("need faces of every domain, and at least two domains")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DomainClassifier(outputs=k)
    classifier.to(device).train()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=CLASSIFIER_LR)
    share = max(1, CLASSIFIER_BATCH // k)
    for _ in range(steps):
        pick = torch.cat(
            [ids[torch.randint(len(ids), (share,), generator=generator)] for ids in by_domain]
        )
        batch = _signed_unit(faces[pick])
        mirror = (torch.rand(len(batch), generator=generator) < 0.5).view(-1, 1, 1, 1)
        batch = torch.where(mirror, batch.flip(3), batch).to(device)
        loss = F.cross_entropy(classifier(batch), domains[pick].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval()


def cached_multi_domain_classifier(
    faces: torch.Tensor,
    domains: torch.Tensor,
    cache_dir: Path | None,
    *,
    steps: int = MULTI_DOMAIN_CLASSIFIER_STEPS,
    seed: int = CLASSIFIER_SEED,
    device: torch.device | None = None,
) -> DomainClassifier:
    """:func:`train_multi_domain_classifier`, or its weights from ``cache_dir`` if trained
    before (``multi-domain-classifier-<digest>.pt``, :func:`multi_domain_classifier_digest`)."""
    device = device or torch.device("cpu")
    path = None
    if cache_dir is not None:
        digest = multi_domain_classifier_digest(faces, domains, steps, seed)
        path = cache_dir / f"multi-domain-classifier-{digest[:16]}.pt"
    outputs = int(domains.max()) + 1
    return _cached(
        path,
        lambda: DomainClassifier(outputs=outputs),
        lambda: train_multi_domain_classifier(
            faces, domains, steps=steps, seed=seed, device=device
        ),
        device,
    )
