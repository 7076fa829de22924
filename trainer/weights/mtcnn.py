"""MTCNN weights from the ``facenet-pytorch`` package's data files.

facenet-pytorch 2.6.0 ships ``data/pnet.pt``, ``data/rnet.pt`` and ``data/onet.pt``: plain
state_dicts (fp32, keys ``conv1.weight``, ``prelu1.weight``, ...) converted from the original
Caffe MTCNN. The files are located through the import spec only: importing
``facenet_pytorch`` needs torchvision, which this project does not install.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from trainer.archs import build_network
from trainer.weights.checkpoint import fit_strict, read_state_dict
from trainer.weights.packages import package_path

StateDict = dict[str, torch.Tensor]

PACKAGE = "facenet_pytorch"
# Our registered architecture for each of facenet-pytorch's three files.
ARCH_BY_NET = {"pnet": "mtcnn_pnet", "rnet": "mtcnn_rnet", "onet": "mtcnn_onet"}


def package_data_dir() -> Path:
    """``facenet_pytorch/data`` of the installed package, found without importing it.

    Raises:
        FileNotFoundError: facenet-pytorch is not installed.
    """
    data = package_path(PACKAGE, "data")
    if data is not None:
        return data
    raise FileNotFoundError("facenet-pytorch is not installed (no facenet_pytorch/data)")


def _net_name(net: str) -> str:
    key = net.lower().removeprefix("mtcnn_")
    if key not in ARCH_BY_NET:
        raise KeyError(f"unknown MTCNN net {net!r}; known: {', '.join(sorted(ARCH_BY_NET))}")
    return key


def state_dict_mtcnn(net: str, path: str | Path | None = None) -> StateDict:
    """Load one of facenet-pytorch's MTCNN state_dicts and prove it fits our module.

    Args:
        net: ``"pnet"``, ``"rnet"`` or ``"onet"`` (``"mtcnn_pnet"`` etc. accepted too).
        path: a ``.pt`` to read instead of the packaged one.

    Returns:
        fp32 CPU tensors keyed like facenet-pytorch's modules, after a ``strict=True`` load
        into a fresh ``mtcnn_<net>``.

    Raises:
        KeyError: unknown ``net``.
        FileNotFoundError: facenet-pytorch is not installed (and no ``path`` was given).
        WeightImportError: the file is not a state_dict, or does not fit the module.
    """
    key = _net_name(net)
    file = Path(path) if path is not None else package_data_dir() / f"{key}.pt"
    state = {k: v.float() for k, v in read_state_dict(file).items()}
    arch = ARCH_BY_NET[key]
    return fit_strict(build_network(arch), state, source=str(file), arch=arch)


def load_mtcnn(net: str) -> nn.Module:
    """``mtcnn_<net>`` with facenet-pytorch's weights, in eval mode on CPU.

    Args:
        net: ``"pnet"``, ``"rnet"`` or ``"onet"``.
    """
    key = _net_name(net)
    model = build_network(ARCH_BY_NET[key])
    model.load_state_dict(state_dict_mtcnn(key), strict=True)
    return model.eval()
