"""pix2pixHD weights: our own tiny facade model (trained here, cached), or NVIDIA checkpoints.

No pip package ships pix2pixHD weights, so the served facade model is trained on the shared
CMP facades by :mod:`trainer.train.pix2pixhd`. Training takes seconds, but a model build should
not repeat it: the result is cached under ``<state_dir>/weights/`` and keyed by a hash of the
training config, the recipe version and the data, so any change retrains and nothing stale is
served.

NVIDIA's own ``latest_net_G.pth`` / ``latest_net_D.pth`` / ``latest_net_E.pth`` are bare
state_dicts with our key names; :func:`load_official_pix2pixhd` proves one fits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantry.core.settings import get_settings
from trainer.train.pix2pixhd import (
    FacadesTinyConfig,
    data_fingerprint,
    facades_dir,
    run_facades_tiny,
)
from trainer.weights.checkpoint import load_checkpoint

StateDict = dict[str, torch.Tensor]

CACHE_FILE = "pix2pixhd_facades_tiny.pt"


@dataclass(frozen=True)
class FacadesTinyWeights:
    """The trained facade generator and encoder, and what their run measured.

    Attributes:
        key: hash of config + recipe + data the weights were trained from.
        generator: ``pix2pixhd_facades_tiny`` state_dict.
        encoder: ``pix2pixhd_facades_tiny_encoder`` state_dict.
        metrics: ``l1_before``, ``l1_after``, ``l1_zero_features_before``,
            ``l1_zero_features_after``, ``seconds``, ``steps``.
    """

    key: str
    generator: StateDict
    encoder: StateDict
    metrics: dict[str, float]


def facades_tiny_cache_path(state_dir: Path | None = None) -> Path:
    """``<state_dir>/weights/pix2pixhd_facades_tiny.pt``."""
    return (state_dir or get_settings().state_dir) / "weights" / CACHE_FILE


def _read_cache(path: Path, key: str) -> FacadesTinyWeights | None:
    """The cached weights if ``path`` holds a run with this ``key``; None otherwise.

    An unreadable file counts as a miss: it is rewritten by the next training run.
    """
    if not path.is_file():
        return None
    try:
        raw: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any corrupt or foreign file is just a cache miss
        return None
    if not isinstance(raw, dict) or raw.get("key") != key:
        return None
    return FacadesTinyWeights(
        key=key,
        generator=raw["generator"],
        encoder=raw["encoder"],
        metrics={k: float(v) for k, v in raw["metrics"].items()},
    )


def _write_cache(path: Path, weights: FacadesTinyWeights) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename: a concurrent build never reads a half-written file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(
        {
            "key": weights.key,
            "generator": weights.generator,
            "encoder": weights.encoder,
            "metrics": weights.metrics,
        },
        tmp,
    )
    os.replace(tmp, path)


def facades_tiny_weights(
    config: FacadesTinyConfig | None = None,
    *,
    data_dir: Path | None = None,
    cache: Path | None = None,
    retrain: bool = False,
) -> FacadesTinyWeights:
    """The facade model's weights: from the cache when its key matches, else trained now.

    Args:
        config: the training run (default :class:`FacadesTinyConfig`).
        data_dir: the shared data root (default: settings).
        cache: the cache file (default :func:`facades_tiny_cache_path`).
        retrain: ignore the cache and train (the cache is then rewritten).
    """
    cfg = config or FacadesTinyConfig()
    key = cfg.digest(data_fingerprint(facades_dir(data_dir)))
    path = cache or facades_tiny_cache_path()
    if not retrain and (hit := _read_cache(path, key)) is not None:
        return hit
    run = run_facades_tiny(cfg, data_dir)
    weights = FacadesTinyWeights(
        key=key,
        generator={k: v.detach().clone() for k, v in run.generator.state_dict().items()},
        encoder={k: v.detach().clone() for k, v in run.encoder.state_dict().items()},
        metrics={
            "l1_before": run.l1_before,
            "l1_after": run.l1_after,
            "l1_zero_features_before": run.l1_zero_features_before,
            "l1_zero_features_after": run.l1_zero_features_after,
            "seconds": run.seconds,
            "steps": float(cfg.steps),
        },
    )
    _write_cache(path, weights)
    return weights


def state_dict_facades_tiny(
    config: FacadesTinyConfig | None = None,
    *,
    data_dir: Path | None = None,
    cache: Path | None = None,
) -> StateDict:
    """The ``pix2pixhd_facades_tiny`` generator's state_dict (cached training run)."""
    return facades_tiny_weights(config, data_dir=data_dir, cache=cache).generator


def load_official_pix2pixhd(
    path: str | Path, arch: str = "pix2pixhd_local", **arch_kwargs: Any
) -> StateDict:
    """Read an NVIDIA/pix2pixHD checkpoint and prove it fits ``arch`` with ``strict=True``.

    Args:
        path: ``latest_net_G.pth`` (or ``_D`` / ``_E``), a bare state_dict.
        arch: a registered variant, e.g. ``"pix2pixhd_local"`` (label2city_1024p),
            ``"pix2pixhd_global"`` (label2city_512p), ``"pix2pixhd_discriminator"``,
            ``"pix2pixhd_encoder"``.
        **arch_kwargs: the options the checkpoint was trained with when they differ from the
            variant's defaults (``input_nc``, ``ngf``, ``n_downsample_global``, ...).

    Returns:
        The state_dict, with DataParallel's ``module.`` prefix and pre-0.4 InstanceNorm
        statistics removed (see :mod:`trainer.weights.checkpoint`).

    Raises:
        WeightImportError: the file holds no state_dict, or it does not fit ``arch``.
    """
    return load_checkpoint(path, arch, **arch_kwargs)
