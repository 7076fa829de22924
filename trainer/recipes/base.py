"""What a family's recipe provides to the training loop, and the helpers it gets."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gantry.core.training import TrainConfig
from trainer.data import Sample, TrainingDataset, build_dataset

# The folder of a run where a recipe caches what its evaluation needs (classifiers).
EVALUATION_DIR = "evaluation"
Dataset = TypeVar("Dataset")


class Recipe(ABC):
    """A family's training: networks, optimisers, one step, evaluation, samples.

    The loop builds the recipe, may wrap ``networks`` in DistributedDataParallel (so steps
    call ``self.networks[name]``, never a saved reference), checkpoints ``networks``,
    ``optimizers``, ``scalers`` and whatever :meth:`extra_state` returns, keeps the EMA of
    ``generator_key``'s network, and exports that network when a run publishes.

    ``run_dir`` is the run's folder (None outside a run): a recipe may cache what its
    evaluation needs there.
    """

    config_type: ClassVar[type[TrainConfig]]
    generator_key: ClassVar[str] = "generator"

    def __init__(
        self,
        config: TrainConfig,
        *,
        data_dir: Path,
        device: torch.device,
        run_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.device = device
        self.run_dir = run_dir
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        # What a run's result should tell its reader (a loss that is off, and why).
        self.notes: list[str] = []

    # --- what each family writes -----------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create ``networks`` (on ``device``) and ``optimizers`` (one per network trained)."""

    @abstractmethod
    def train_dataset(self) -> TrainingDataset:
        """The samples steps draw from."""

    @abstractmethod
    def train_step(self, batch: Sample, step: int) -> dict[str, float]:
        """One optimisation step on ``batch`` (on ``device``); returns its losses."""

    @abstractmethod
    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Figures on held-aside data (never trained on) for ``generator`` (eval mode)."""

    @abstractmethod
    def samples(self, generator: nn.Module) -> list[list[torch.Tensor]]:
        """Rows of (3, H, W) images in [-1, 1] for the sample grid (input, output, ...)."""

    @abstractmethod
    def generator_architecture(self) -> str:
        """The registered architecture of the network a run saves and publishes (the
        generator, or what :meth:`served_network` makes of it)."""

    # --- what a family may add -------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """State beyond networks and optimisers that an exact resume needs (checkpointed).

        Values must be what ``torch.load(weights_only=True)`` reads back: tensors, numbers,
        strings, and lists and dicts of them.
        """
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned (a checkpoint's copy, tensors on CPU)."""
        if state:
            raise ValueError(f"{type(self).__name__} keeps no extra state; got {sorted(state)}")

    def served_network(self, generator: nn.Module) -> nn.Module:
        """The network a run saves as ``generator.pth`` and publishes, given the generator it
        evaluates (the EMA copy when on): the generator itself unless a family serves it with
        other trained parts (StarGAN's editor reads D's classifier)."""
        return generator

    # --- helpers ---------------------------------------------------------------------------
    def splits(self, kind: type[Dataset], what: str) -> tuple[Dataset, Dataset]:
        """The config's dataset at ``data.size``: its training and held-aside splits, each
        checked to be a ``kind`` (a TypeError says the recipe needs ``what`` otherwise)."""
        data = self.config.data
        train, val = (
            build_dataset(data.dataset, self.data_dir, split, data.size)
            for split in ("train", "val")
        )
        if not isinstance(train, kind) or not isinstance(val, kind):
            raise TypeError(f"{type(self).__name__} needs {what}; {data.dataset} has none")
        return train, val

    def adam(self, *modules: nn.Module) -> torch.optim.Adam:
        """Adam over the modules' parameters with the config's learning rate and betas."""
        optim = self.config.optim
        params = itertools.chain.from_iterable(m.parameters() for m in modules)
        return torch.optim.Adam(params, lr=optim.lr, betas=(optim.beta1, optim.beta2))

    def add(self, name: str, network: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
        """Register a network (moved to the device) and its optimiser (and AMP scaler)."""
        self.networks[name] = network.to(self.device)
        if optimizer is not None:
            self.add_optimizer(name, optimizer)

    def add_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        """Register an optimiser (and its AMP scaler) as ``name``, e.g. one for two networks."""
        self.optimizers[name] = optimizer
        self.scalers[name] = torch.amp.GradScaler(
            self.device.type, enabled=self.config.amp and self.device.type == "cuda"
        )

    def set_requires_grad(self, flag: bool, *names: str) -> None:
        """Turn the gradients of networks ``names`` off (or back on), e.g. D's during G's
        update, to save their computation. A network in DistributedDataParallel is left as
        it is: its wrapper must see the same parameters take part in every backward, so
        there D's gradients are computed and then dropped by the next ``optimize``."""
        for name in names:
            network = self.networks[name]
            if not isinstance(network, DistributedDataParallel):
                network.requires_grad_(flag)

    def autocast(self) -> AbstractContextManager[object]:
        """Mixed precision when the config asks (fp16 on CUDA, bf16 on CPU)."""
        if not self.config.amp:
            return nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def optimize(
        self,
        name: str,
        loss: torch.Tensor,
        *,
        also: tuple[str, ...] = (),
        frozen: Iterable[nn.Parameter] = (),
    ) -> None:
        """Back-propagate ``loss`` once (scaled under AMP) and step ``name``'s optimiser and
        those in ``also`` (networks trained by the same loss, like pix2pixHD's G and E).

        Parameters in ``frozen`` keep their values: their gradients are dropped before the
        step (Adam skips a parameter without one), so DDP still sees every parameter used.
        """
        optimizers = [self.optimizers[n] for n in (name, *also)]
        scaler = self.scalers[name]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        for parameter in frozen:
            parameter.grad = None
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
