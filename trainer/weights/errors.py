"""The one error of weight import: a file that is malformed, or does not fit its module."""

from __future__ import annotations


class WeightImportError(ValueError):
    """Weights that cannot be read, or do not fit the architecture they are loaded into.

    Raised by the format readers (ncnn, dlib ``.dat``, ONNX), the family mappings and the
    checkpoint loader alike; the message names the file and what did not match.
    """
