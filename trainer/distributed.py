"""One process or many: torchrun's environment, DistributedDataParallel, and the launcher.

``gantry train --nproc N`` re-runs the same command under ``torchrun``; each process then
finds ``RANK``/``WORLD_SIZE`` in its environment, joins the process group (gloo on CPU, nccl
on GPUs), and the loop wraps the recipe's networks in DDP. Rank 0 alone writes files.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class World:
    """This process's place in the run."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The world torchrun describes in the environment (one process when it is absent)."""
    return World(
        rank=int(os.environ.get("RANK", "0")),
        size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_process_group(world: World, device: torch.device) -> None:
    """Join torchrun's group: nccl for CUDA devices, gloo for the CPU."""
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``module`` in DDP when the run has several processes (gradients averaged), else as is."""
    if not world.distributed or not any(p.requires_grad for p in module.parameters()):
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (or the module itself)."""
    inner = getattr(module, "module", module)
    assert isinstance(inner, nn.Module)
    return inner


def broadcast_object(value: Any, world: World) -> Any:
    """Rank 0's ``value`` on every rank (a checkpoint read only where the files are)."""
    if not world.distributed:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(values: dict[str, float], world: World) -> dict[str, float]:
    """The mean over ranks of each metric (what rank 0 logs)."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(tensor)
    return {k: float(v) / world.size for k, v in zip(keys, tensor.tolist(), strict=True)}


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


@dataclass(frozen=True)
class Launch:
    """How many processes on how many machines (torchrun's flags)."""

    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = 29500


def torchrun_command(launch: Launch, module_args: list[str]) -> list[str]:
    """``python -m torch.distributed.run ... -m <module_args>`` for ``launch``.

    One machine uses a standalone rendezvous on a free port; several use the static one at
    ``master_addr:master_port`` (pod 0 of the Kubernetes Job).
    """
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={launch.nproc}"]
    if launch.nnodes == 1 and launch.master_addr is None:
        command.append("--standalone")
    else:
        command += [
            f"--nnodes={launch.nnodes}",
            f"--node-rank={launch.node_rank}",
            f"--master-addr={launch.master_addr or '127.0.0.1'}",
            f"--master-port={launch.master_port}",
        ]
    return [*command, "-m", *module_args]
