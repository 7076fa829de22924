"""Reading TensorFlow.js weights: a ``*-weights_manifest.json`` and the binary shards it names.

The manifest is a list of groups; each group names its shard files (``paths``, read in order
and concatenated) and its ``weights``: ``{"name", "shape", "dtype"}`` entries stored back to
back in that byte stream, each optionally with ``quantization``
``{"dtype": "uint8" | "uint16", "scale", "min"}``, in which case the stored values are the
unsigned integers ``q`` and the weight is ``q * scale + min`` (tfjs ``io.decodeWeights``;
a ``float16`` quantization stores half floats instead). Shapes are TensorFlow's: conv filters
``(H, W, I, O)``, depthwise filters ``(H, W, C, multiplier)``, dense weights ``(in, out)``.

Only float32 and int32 weights are decoded; anything else raises, so a family mapping never
reads a value it did not expect.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from trainer.weights.errors import WeightImportError

_STORED: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}
_QUANTISED: dict[str, np.dtype[Any]] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
}


def _weight(entry: dict[str, Any], stream: bytes, offset: int) -> tuple[npt.NDArray[Any], int]:
    """One manifest entry's values from ``stream`` at ``offset``, and the offset after it."""
    name, dtype = entry["name"], entry["dtype"]
    if dtype not in _STORED:
        raise WeightImportError(f"tfjs weight {name}: dtype {dtype} is not supported")
    shape = tuple(int(d) for d in entry["shape"])
    count = math.prod(shape)
    quantization = entry.get("quantization")
    stored: np.dtype[Any] | None = (
        _STORED[dtype] if quantization is None else _QUANTISED.get(quantization["dtype"])
    )
    if stored is None:
        raise WeightImportError(f"tfjs weight {name}: quantization {quantization} not supported")
    end = offset + count * stored.itemsize
    if end > len(stream):
        raise WeightImportError(f"tfjs weight {name} runs past the end of the shards")
    raw = np.frombuffer(stream, dtype=stored, count=count, offset=offset)
    if quantization is None or stored.kind == "f":
        values = raw.astype(_STORED[dtype])
    else:
        scale, low = float(quantization["scale"]), float(quantization["min"])
        values = (raw.astype(np.float64) * scale + low).astype(_STORED[dtype])
    return values.reshape(shape), end


def read_tfjs_weights(manifest: Path) -> dict[str, npt.NDArray[Any]]:
    """Every weight of a tfjs manifest, dequantised, by its tfjs name (TensorFlow layouts).

    Args:
        manifest: the ``*-weights_manifest.json``; its shards sit beside it.

    Raises:
        WeightImportError: a shard is missing or short, a dtype or quantization is not
            supported, a name repeats, or a group's shards hold more bytes than its weights.
    """
    try:
        groups = json.loads(manifest.read_text())
    except (OSError, ValueError) as error:
        raise WeightImportError(f"cannot read tfjs manifest {manifest}: {error}") from error
    weights: dict[str, npt.NDArray[Any]] = {}
    for group in groups:
        try:
            stream = b"".join((manifest.parent / p).read_bytes() for p in group["paths"])
        except OSError as error:
            raise WeightImportError(f"tfjs shard of {manifest.name}: {error}") from error
        offset = 0
        for entry in group["weights"]:
            if entry["name"] in weights:
                raise WeightImportError(f"tfjs weight {entry['name']} appears twice")
            weights[entry["name"]], offset = _weight(entry, stream, offset)
        if offset != len(stream):
            raise WeightImportError(
                f"{manifest.name}: the shards hold {len(stream) - offset} bytes no weight names"
            )
    return weights
