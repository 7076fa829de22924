"""Reader for ncnn models: the text ``.param`` graph and the binary ``.bin`` weights.

Only what is needed to lift weights out of a model is implemented; nothing here runs a graph.

``.param`` layout (text)::

    7767517                       magic
    <layer_count> <blob_count>
    <type> <name> <n_in> <n_out> <in blobs...> <out blobs...> <k=v ...>

A key ``k >= 0`` holds one int or float (floats are recognised by ``.``, ``e`` or ``E``). A key
``k <= -23300`` holds an array for parameter id ``-(k + 23300)``: ``-23310=1,2.0e-01`` is
parameter 10 = ``(0.2,)``, the leading ``1`` being the element count. Arrays are stored here
under their real id, so ``params[10]`` for that example.

``.bin`` layout: the weights of each layer, in ``.param`` layer order, back to back. Every
weight array is one of two kinds, decided by the layer's C++ loader, not by the file:

* tagged: a 4-byte little-endian tag, then data. ``0x01306B47`` = fp16, ``0x00000000`` or
  ``0x0002C056`` = fp32, any other non-zero tag = a 256-entry fp32 lookup table followed by
  uint8 indices. fp16 and uint8 payloads are zero-padded to a multiple of 4 bytes.
* raw: fp32 values, no tag (biases, PReLU slopes, ...).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trainer.weights.errors import WeightImportError

PARAM_MAGIC = 7767517

TAG_FP16 = 0x01306B47
TAG_FP32 = 0x00000000
TAG_FP32_EXTRA = 0x0002C056  # fp32 followed by nothing else; written by some converters
TAG_INT8 = 0x000D4B38

# ncnn encodes "this key is an array" by offsetting the key with this constant.
_ARRAY_KEY_BASE = -23300

Scalar = int | float
ParamValue = Scalar | tuple[Scalar, ...]

# Layer types known to carry no weights in the .bin. Anything outside this set and outside
# _WEIGHT_READERS is rejected: silently skipping an unknown layer would shift every later
# weight and produce a plausible-looking but wrong network.
_WEIGHTLESS = frozenset(
    {
        "AbsVal",
        "BinaryOp",
        "Clip",
        "Concat",
        "Crop",
        "Dropout",
        "ELU",
        "Eltwise",
        "Flatten",
        "HardSigmoid",
        "HardSwish",
        "Input",
        "Interp",
        "Mish",
        "Noop",
        "Padding",
        "Permute",
        "PixelShuffle",
        "Pooling",
        "Reorg",
        "ReLU",
        "Reshape",
        "Sigmoid",
        "Slice",
        "Softmax",
        "Split",
        "Swish",
        "TanH",
        "UnaryOp",
    }
)


@dataclass
class NcnnLayer:
    """One layer of an ncnn graph.

    Attributes:
        type: ncnn layer type, e.g. ``"Convolution"``.
        name: the layer's unique name in the graph.
        inputs: names of the blobs it consumes.
        outputs: names of the blobs it produces.
        params: parameter id → value (arrays under their real id, see module docstring).
        weights: filled by :func:`read_bin`; e.g. ``{"weight": ..., "bias": ...}`` as fp32
            arrays shaped like PyTorch parameters (OIHW for convolutions).
    """

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue]
    weights: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)

    def param(self, key: int, default: ParamValue) -> ParamValue:
        """The value of parameter ``key``, or ncnn's default when the file omits it."""
        return self.params.get(key, default)

    def int_param(self, key: int, default: int) -> int:
        """Parameter ``key`` as an int; raises if the file stores something else."""
        value = self.params.get(key, default)
        if not isinstance(value, int):
            raise WeightImportError(f"{self.name}: param {key} should be an int, got {value!r}")
        return value


@dataclass
class NcnnNet:
    """A parsed ncnn model: layers in file order (which is also the .bin order)."""

    layers: list[NcnnLayer]
    blob_count: int = 0

    def of_type(self, *types: str) -> list[NcnnLayer]:
        """Layers whose type is one of ``types``, in file order."""
        return [layer for layer in self.layers if layer.type in types]

    def layer(self, name: str) -> NcnnLayer:
        """The layer called ``name``; KeyError if absent."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer named {name!r}")


def _parse_scalar(text: str) -> Scalar:
    # Same rule as ncnn's ParamDict: a value is a float iff it contains '.', 'e' or 'E'.
    if any(ch in text for ch in ".eE"):
        return float(text)
    return int(text)


def _parse_params(tokens: list[str], where: str) -> dict[int, ParamValue]:
    params: dict[int, ParamValue] = {}
    for token in tokens:
        key_text, sep, value_text = token.partition("=")
        if not sep:
            raise WeightImportError(f"{where}: expected k=v, got {token!r}")
        key = int(key_text)
        if key <= _ARRAY_KEY_BASE:
            items = value_text.split(",")
            count = int(items[0])
            values = tuple(_parse_scalar(item) for item in items[1:])
            if len(values) != count:
                raise WeightImportError(
                    f"{where}: array {key} declares {count} values but has {len(values)}"
                )
            params[-(key - _ARRAY_KEY_BASE)] = values
        else:
            params[key] = _parse_scalar(value_text)
    return params


def parse_param(path: str | Path) -> NcnnNet:
    """Parse an ncnn ``.param`` text file (weights left empty).

    Args:
        path: the ``.param`` file.

    Returns:
        The graph, layers in file order.

    Raises:
        WeightImportError: on a wrong magic number, layer count or malformed line.
    """
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or lines[0] != str(PARAM_MAGIC):
        raise WeightImportError(f"{path}: not an ncnn text .param (magic {PARAM_MAGIC} missing)")
    layer_count, blob_count = (int(v) for v in lines[1].split())
    layers: list[NcnnLayer] = []
    for lineno, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        where = f"{path}:{lineno}"
        if len(tokens) < 4:
            raise WeightImportError(f"{where}: truncated layer line")
        layer_type, name = tokens[0], tokens[1]
        n_in, n_out = int(tokens[2]), int(tokens[3])
        blobs_end = 4 + n_in + n_out
        if len(tokens) < blobs_end:
            raise WeightImportError(f"{where}: expected {n_in}+{n_out} blob names")
        layers.append(
            NcnnLayer(
                type=layer_type,
                name=name,
                inputs=tuple(tokens[4 : 4 + n_in]),
                outputs=tuple(tokens[4 + n_in : blobs_end]),
                params=_parse_params(tokens[blobs_end:], where),
            )
        )
    if len(layers) != layer_count:
        raise WeightImportError(f"{path}: header says {layer_count} layers, found {len(layers)}")
    return NcnnNet(layers=layers, blob_count=blob_count)


def _align4(n: int) -> int:
    return (n + 3) & ~3


class _BinReader:
    """Sequential reader over the .bin bytes that mirrors ncnn's ModelBin::load."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def _take(self, nbytes: int, what: str) -> bytes:
        end = self.pos + nbytes
        if end > len(self.data):
            raise WeightImportError(
                f"{self.path}: {what} needs {nbytes} bytes at offset {self.pos}, "
                f"but the file is {len(self.data)} bytes"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def raw_fp32(self, count: int, what: str) -> npt.NDArray[np.float32]:
        return np.frombuffer(self._take(4 * count, what), dtype="<f4").copy()

    def tagged(self, count: int, what: str) -> npt.NDArray[np.float32]:
        (tag,) = struct.unpack("<I", self._take(4, f"{what} tag"))
        if tag == TAG_FP16:
            payload = self._take(_align4(2 * count), what)
            return np.frombuffer(payload[: 2 * count], dtype="<f2").astype(np.float32)
        if tag in (TAG_FP32, TAG_FP32_EXTRA):
            return self.raw_fp32(count, what)
        if tag == TAG_INT8:
            raise WeightImportError(f"{self.path}: {what} is int8-quantised; not supported")
        # Any other tag: 256-entry fp32 codebook, then one uint8 index per value.
        table = self.raw_fp32(256, f"{what} codebook")
        payload = self._take(_align4(count), what)
        return table[np.frombuffer(payload[:count], dtype=np.uint8)]


def _read_conv_like(layer: NcnnLayer, reader: _BinReader) -> None:
    """Convolution / ConvolutionDepthWise: tagged weights, then optional raw fp32 bias."""
    if layer.int_param(8, 0):
        raise WeightImportError(f"{layer.name}: int8 convolution (8=1) is not supported")
    num_output = layer.int_param(0, 0)
    kernel_w = layer.int_param(1, 0)
    kernel_h = layer.int_param(11, kernel_w)
    count = layer.int_param(6, 0)
    per_out = kernel_w * kernel_h * num_output
    if per_out == 0 or count % per_out:
        raise WeightImportError(
            f"{layer.name}: weight count {count} is not a multiple of "
            f"{num_output}x{kernel_h}x{kernel_w}"
        )
    # Input channels per group; for grouped/depthwise convs this is PyTorch's dim 1 as well.
    in_per_group = count // per_out
    weight = reader.tagged(count, f"{layer.name}.weight")
    # ncnn stores convolution weights output-major, exactly PyTorch's OIHW order.
    layer.weights["weight"] = weight.reshape(num_output, in_per_group, kernel_h, kernel_w)
    if layer.int_param(5, 0):
        layer.weights["bias"] = reader.raw_fp32(num_output, f"{layer.name}.bias")


def _read_prelu(layer: NcnnLayer, reader: _BinReader) -> None:
    """PReLU: raw fp32 slopes, ``0=`` of them (1 = one shared slope)."""
    layer.weights["weight"] = reader.raw_fp32(layer.int_param(0, 0), f"{layer.name}.slope")


def _read_inner_product(layer: NcnnLayer, reader: _BinReader) -> None:
    """InnerProduct: tagged (out, in) weights, then optional raw fp32 bias."""
    num_output = layer.int_param(0, 0)
    count = layer.int_param(2, 0)
    if num_output == 0 or count % num_output:
        raise WeightImportError(f"{layer.name}: weight count {count} vs num_output {num_output}")
    weight = reader.tagged(count, f"{layer.name}.weight")
    layer.weights["weight"] = weight.reshape(num_output, count // num_output)
    if layer.int_param(1, 0):
        layer.weights["bias"] = reader.raw_fp32(num_output, f"{layer.name}.bias")


_WEIGHT_READERS = {
    "Convolution": _read_conv_like,
    "ConvolutionDepthWise": _read_conv_like,
    "PReLU": _read_prelu,
    "InnerProduct": _read_inner_product,
}


def read_bin(net: NcnnNet, path: str | Path) -> NcnnNet:
    """Fill ``net``'s layer weights from an ncnn ``.bin``, in place.

    Args:
        net: the graph from :func:`parse_param` for the same model.
        path: the ``.bin`` file.

    Returns:
        ``net``, for chaining.

    Raises:
        WeightImportError: on an unsupported weighted layer type, a short file, or trailing
            bytes; the whole file must be consumed exactly, which is the only check that the
            .param and .bin belong together.
    """
    data = Path(path).read_bytes()
    reader = _BinReader(data, str(path))
    for layer in net.layers:
        read = _WEIGHT_READERS.get(layer.type)
        if read is not None:
            read(layer, reader)
        elif layer.type not in _WEIGHTLESS:
            raise WeightImportError(
                f"{path}: layer {layer.name} has type {layer.type}, whose weights this "
                "reader cannot parse"
            )
    if reader.pos != len(data):
        raise WeightImportError(
            f"{path}: {len(data) - reader.pos} bytes left over after the last layer "
            f"(read {reader.pos} of {len(data)}); .param and .bin do not match"
        )
    return net


def load_ncnn(param_path: str | Path, bin_path: str | Path) -> NcnnNet:
    """Parse an ncnn ``.param`` and read its ``.bin``.

    Args:
        param_path: the text graph.
        bin_path: the weights.

    Returns:
        The graph with every weighted layer's arrays in ``layer.weights``.
    """
    return read_bin(parse_param(param_path), bin_path)
