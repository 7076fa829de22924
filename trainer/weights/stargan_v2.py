"""clovaai/stargan-v2's released networks into :class:`~trainer.archs.stargan_v2.StarGANv2`.

clovaai's ``CheckpointIO`` saves ``{name: network.state_dict()}`` for each network it was
given: ``100000_nets_ema.ckpt`` (what its ``sample`` and ``eval`` modes load) holds
``generator``, ``mapping_network`` and ``style_encoder`` (and ``fan``, the face-alignment
network, in the CelebA-HQ release, trained with ``w_hpf 1``). Networks saved from
``nn.DataParallel`` wrappers prefix their keys with ``module.``. The container's own
state_dict is that dict flattened, ``<name>.<key>``, so loading is a rename and a strict
load.

Only the ``w_hpf 0`` networks fit (the AFHQ release: ``stargan_v2_afhq``): with ``w_hpf 1``
clovaai's generator has one more down/up stage and adds FAN-masked encoder features in its
decoder, which :mod:`trainer.archs.stargan_v2` does not implement, so a file with ``fan`` is
refused with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from trainer.archs import build_network
from trainer.archs.stargan_v2 import StarGANv2
from trainer.weights.checkpoint import StateDict, fit_strict
from trainer.weights.errors import WeightImportError

NETS_EMA_PARTS = ("generator", "mapping_network", "style_encoder")


def nets_ema_state_dict(checkpoint: Mapping[str, Any], *, source: str = "checkpoint") -> StateDict:
    """clovaai's ``{network: state_dict}`` as the container's flat state_dict.

    Args:
        checkpoint: the loaded ``*_nets_ema.ckpt``.
        source: names the file in errors.

    Returns:
        ``{"<network>.<key>": tensor}`` for the three networks, ``module.`` prefixes removed.

    Raises:
        WeightImportError: a network is missing or not a state_dict of tensors, the file
            holds the CelebA-HQ model's ``fan`` (``w_hpf 1``), or it holds other entries.
    """
    if "fan" in checkpoint:
        raise WeightImportError(
            f"{source} holds 'fan': a w_hpf > 0 model (CelebA-HQ), whose generator has "
            "another stage and FAN-masked skips; only w_hpf 0 models (AFHQ) are supported"
        )
    names = set(checkpoint)
    expected = set(NETS_EMA_PARTS)
    if names != expected:
        raise WeightImportError(
            f"{source} must hold exactly {sorted(expected)} (clovaai's nets_ema); "
            f"missing {sorted(expected - names)}, unexpected {sorted(names - expected)}"
        )
    state: StateDict = {}
    for name in NETS_EMA_PARTS:
        part = checkpoint[name]
        if not isinstance(part, Mapping) or not all(torch.is_tensor(v) for v in part.values()):
            raise WeightImportError(f"{source}: {name} is not a state_dict of tensors")
        for key, value in part.items():
            state[f"{name}.{str(key).removeprefix('module.')}"] = value
    return state


def load_clovaai_nets_ema(
    checkpoint: str | Path | Mapping[str, Any], arch: str = "stargan_v2_afhq", **arch_kwargs: Any
) -> StarGANv2:
    """Build ``arch`` and load clovaai's ``nets_ema`` into it with ``strict=True``.

    Args:
        checkpoint: a ``*_nets_ema.ckpt`` path (read with ``weights_only=True``) or the
            dict it holds.
        arch: the registered container to load into (e.g. ``stargan_v2_afhq``).
        **arch_kwargs: forwarded to it (``num_domains``).

    Returns:
        The container with the file's weights, in eval mode.

    Raises:
        WeightImportError: the file is not clovaai's ``nets_ema`` of a ``w_hpf 0`` model, or
            its keys or shapes do not fit ``arch`` (listed).
    """
    source = str(checkpoint) if isinstance(checkpoint, str | Path) else "checkpoint"
    if isinstance(checkpoint, str | Path):
        checkpoint = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise WeightImportError(f"{source}: not a dict of state_dicts")
    nets = build_network(arch, **arch_kwargs)
    if not isinstance(nets, StarGANv2):
        raise TypeError(f"{arch} is not a StarGAN v2 container")
    fit_strict(nets, nets_ema_state_dict(checkpoint, source=source), source=source, arch=arch)
    return nets.eval()
