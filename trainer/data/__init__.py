"""Training datasets, registered by name (``data.dataset`` in a config), and the sampler.

A dataset reads a folder of ``../shared/data`` (the ``data_dir`` setting) once into memory as
uint8 arrays and hands out samples as float tensors in [-1, 1]; which samples a step sees is
decided by :class:`trainer.data.sampling.StepSampler`, from the seed and the step alone, so a
resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: the folder of the data directory it reads, and its factory
    (called with that folder, the split and the size)."""

    folder: Path
    build: DatasetFactory


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, folder: Path) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: register a factory as dataset ``name``, reading ``<data_dir>/<folder>``."""

    def decorate(factory: DatasetFactory) -> DatasetFactory:
        DATASETS.add(name, DatasetSpec(folder, factory))
        return factory

    return decorate


def dataset_folder(name: str, data_dir: Path) -> Path:
    """The folder dataset ``name`` reads (what a build-time run's weights depend on)."""
    return data_dir / DATASETS.get(name).folder


def build_dataset(name: str, data_dir: Path, split: Split, size: int) -> TrainingDataset:
    """The dataset ``name`` (e.g. ``cmp_facades``), ``split``, resized to ``size`` squared."""
    return DATASETS.get(name).build(dataset_folder(name, data_dir), split, size)


def collate(samples: list[Sample]) -> Sample:
    """Stack samples' tensors key by key into a batch."""
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


# Imported for their side effect: each module registers its datasets.
from trainer.data import (  # noqa: E402
    attributes,
    blur,
    frontalization,
    identities,
    inpainting,
    landmarks,
    masks,
    paired,
    superres,
    unpaired,
)

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "Sample",
    "Split",
    "TrainingDataset",
    "attributes",
    "blur",
    "build_dataset",
    "collate",
    "dataset_folder",
    "frontalization",
    "identities",
    "inpainting",
    "landmarks",
    "masks",
    "paired",
    "register_dataset",
    "superres",
    "unpaired",
]
