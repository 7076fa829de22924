"""The one checkpoint loader: read a ``.pth``, unwrap it, and prove it fits its module.

Official checkpoints come in a few wrappings: BasicSR / Real-ESRGAN releases keep the
weights under ``params_ema`` (preferred, as their own inference does) or ``params``; forks
of many projects under ``state_dict`` or ``model``; most are a bare state_dict. Files saved
from ``nn.DataParallel`` prefix every key with ``module.``, and PyTorch < 0.4 (NVIDIA's
pix2pixHD and junyanz's CycleGAN releases date from it) stored running statistics for
InstanceNorm layers that keep none today, while files saved before PyTorch 0.4.1 lack the
``num_batches_tracked`` counter that norms tracking statistics hold today (StarGAN's
released ``200000-G.ckpt`` was trained under 0.3, says yunjey's commit 3c5aa6b).
:func:`load_checkpoint` handles all of these and then loads with ``strict=True``; a mismatch
fails with the missing, unexpected and wrongly-shaped keys listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.archs import build_network
from trainer.weights.errors import WeightImportError

StateDict = dict[str, torch.Tensor]

# Checked in this order: params_ema must win over params in a BasicSR release.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")
_SHOWN = 8  # keys listed per category in an error


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and torch.is_tensor(v) for k, v in value.items())
    )


def read_state_dict(path: str | Path) -> StateDict:
    """The state_dict in a checkpoint file, unwrapped and without ``module.`` prefixes.

    The file is loaded with ``weights_only=True``: a checkpoint from the internet must not be
    able to run code.

    Raises:
        WeightImportError: the file holds no state_dict of tensors.
    """
    raw: Any = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(raw, dict) and not _is_state_dict(raw):
        for key in WRAPPER_KEYS:
            if _is_state_dict(raw.get(key)):
                raw = raw[key]
                break
    if not _is_state_dict(raw):
        found = type(raw).__name__ if not isinstance(raw, dict) else f"keys {sorted(raw)[:5]}"
        raise WeightImportError(
            f"{path}: not a state_dict of tensors (nor under {', '.join(WRAPPER_KEYS)}): {found}"
        )
    return {k.removeprefix("module."): v for k, v in raw.items()}


def stale_norm_statistics(model: nn.Module) -> set[str]:
    """Keys pre-0.4 PyTorch wrote for InstanceNorm layers that keep no statistics.

    PyTorch 0.3 registered ``running_mean`` and ``running_var`` on every InstanceNorm; today's
    ``track_running_stats=False`` layers reject them in a strict load. The forward pass never
    used them.
    """
    keys = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.instancenorm._InstanceNorm) and not (
            module.track_running_stats
        ):
            for buffer in ("running_mean", "running_var", "num_batches_tracked"):
                keys.add(f"{name}.{buffer}")
    return keys


def batch_counters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The ``num_batches_tracked`` buffers of ``model``'s norms (keys → current values).

    PyTorch added the counter in 0.4.1; loading an older file, PyTorch itself fills a missing
    one with the module's value (``_NormBase._load_from_state_dict``), which only
    ``momentum=None`` (cumulative averaging) ever reads.
    """
    counters = {}
    for name, module in model.named_modules():
        counter = getattr(module, "num_batches_tracked", None)
        if isinstance(module, nn.modules.batchnorm._NormBase) and counter is not None:
            prefix = f"{name}." if name else ""
            counters[f"{prefix}num_batches_tracked"] = counter
    return counters


def _listed(keys: Iterable[str]) -> str:
    items = sorted(keys)
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", … ({len(items)} in all)" if len(items) > _SHOWN else "")


def fit_strict(model: nn.Module, state: StateDict, *, source: str, arch: str) -> StateDict:
    """Load ``state`` into ``model`` with ``strict=True``; returns the state that fitted.

    Raises:
        WeightImportError: ``<source> does not fit <arch>``, with the missing, unexpected and
            wrongly-shaped keys.
    """
    stale = stale_norm_statistics(model)
    state = {k: v for k, v in state.items() if k not in stale}
    # A file from before PyTorch 0.4.1 has no batch counters: take the module's own, as
    # PyTorch does, but only for norms whose statistics the file does hold.
    for key, counter in batch_counters(model).items():
        prefix = key.removesuffix("num_batches_tracked")
        if key not in state and f"{prefix}running_mean" in state:
            state[key] = counter.detach().clone()
    expected = model.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in sorted(expected.keys() & state.keys())
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listed(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches (file vs module): {_listed(shapes)}")
        raise WeightImportError(f"{source} does not fit {arch}: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)
    return state


def load_checkpoint(path: str | Path, arch: str, **arch_kwargs: Any) -> StateDict:
    """Read an official checkpoint and prove it fits ``arch`` (built with ``arch_kwargs``).

    Returns:
        The state_dict, unwrapped, without ``module.`` prefixes and stale InstanceNorm
        statistics, known to load into ``arch`` with ``strict=True``.

    Raises:
        WeightImportError: the file holds no state_dict, or it does not fit ``arch``.
    """
    state = read_state_dict(path)
    return fit_strict(build_network(arch, **arch_kwargs), state, source=str(path), arch=arch)
