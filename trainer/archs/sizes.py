"""The input-size rule of fully convolutional networks with strided levels."""

from __future__ import annotations

import torch


def check_input_size(x: torch.Tensor, multiple: int, minimum: int, what: str) -> None:
    """Fail early, with the rule, on an input the network would misalign or cannot pad.

    Skipped during ONNX export: there the sizes stand for symbolic axes, and the served model's
    card states the same rule (``size_multiple``, ``min_input_size``).
    """
    if torch.onnx.is_in_onnx_export():
        return
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or h < minimum or w < minimum:
        raise ValueError(
            f"{what}: H and W must be multiples of {multiple} and at least {minimum}, got {h}x{w}"
        )
