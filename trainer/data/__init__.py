"""Training datasets, registered by name (``data.dataset`` in a config), and the sampler.

A dataset reads a folder of ``../shared/data`` (the ``data_dir`` setting) once into memory as
uint8 arrays and hands out samples as float tensors in [-1, 1]; which samples a step sees is
decided by :class:`trainer.data.sampling.StepSampler`, from the seed and the step alone, so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import torch

from gantry.core.registry import Registry

Split = Literal["train", "val"]
Sample = dict[str, torch.Tensor]


class TrainingDataset(Protocol):
    """What recipes read: a length and a (possibly flipped) sample by index."""

    def __len__(self) -> int: ...

    def sample(self, index: int, flip: bool = False) -> Sample: ...


DatasetFactory = Callable[[Path, Split, int], TrainingDataset]
DATASETS: Registry[DatasetFactory] = Registry("dataset")


def build_dataset(name: str, data_dir: Path, split: Split, size: int) -> TrainingDataset:
    """The dataset ``name`` (e.g. ``cmp_facades``), ``split``, resized to ``size`` squared."""
    return DATASETS.get(name)(data_dir, split, size)


def collate(samples: list[Sample]) -> Sample:
    """Stack samples' tensors key by key into a batch."""
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


# Imported for their side effect: each module registers its datasets.
from trainer.data import attributes, paired, unpaired  # noqa: E402

__all__ = [
    "DATASETS",
    "Sample",
    "Split",
    "TrainingDataset",
    "attributes",
    "build_dataset",
    "collate",
    "paired",
    "unpaired",
]
