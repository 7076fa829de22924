"""Reader for dlib's binary serialisation of DNN models (``.dat`` files).

Only what is needed to lift the weights out of dlib's face-recognition ResNet
(``dlib_face_recognition_resnet_model_v1.dat``) is implemented; nothing here runs a network.
Every structural surprise raises :class:`WeightImportError`: a reader that skipped an unknown
field would shift everything after it and still yield plausible-looking floats.

Primitives (all little-endian, as written by dlib's ``serialize``):

* integer: one control byte whose low 4 bits give the number of value bytes that follow
  (0-8) and whose bit 0x80 marks a negative value; bits 0x70 are always clear.
* float: an integer mantissa ``m`` then an integer exponent ``e``; value ``m * 2**e``.
* bool: one ASCII character, ``'0'`` or ``'1'``.
* string: an integer length, then that many bytes.
* tensor: integer version 2, four integer dims ``(n, k, rows, cols)``, then the raw float32
  values (not the float encoding above), row-major.
* alias tensor (a view into a layer's one parameter tensor): integer version 1, four dims.

Network layout. dlib writes a net recursively from its outermost layer, each wrapper writing
its version before its subnetwork and its own settings after, so the file reads:

1. ``add_loss_layer``: version 1, the loss (here ``loss_metric_2``: margin, distance
   threshold);
2. one version integer per layer, outermost first: 2 for a layer (``add_layer``), 1 for a
   ``tag``/``skip`` (which carry nothing else, not even their tag id), 3 for the layer that
   sits directly on the input;
3. the input layer (``input_rgb_image_sized``: per-channel means, rows, cols);
4. each layer's settings in forward order: a type string, the type's fields, then the
   training state every ``add_layer`` keeps (three bools and three tensors; the layer on the
   input adds its sample expansion factor).

The topology is therefore implicit: which tag a skip jumps to and which tagged output an
``add_prev`` adds are template arguments in C++ and are not stored. Callers reconstruct the
network from the order of layers.

The version numbers are those current dlib writes. Files from older dlib (which wrote the
layer on the input at version 2 and other layers at version 1, without some of the trailing
state) and nets using ``repeat<>`` are not supported; they fail on the version list, on a
type string or on the final end-of-file check rather than being read wrongly in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from trainer.weights.errors import WeightImportError

F32Array = npt.NDArray[np.float32]

# Per-layer version integers that precede the input layer (see the module docstring).
_VERSION_TAG_OR_SKIP = 1
_VERSION_LAYER = 2
_VERSION_LAYER_ON_INPUT = 3
_VERSION_LOSS = 1
_VERSION_TENSOR = 2
_VERSION_ALIAS = 1
# dlib marks non-finite floats with reserved exponents (32000 inf, 32001 -inf, 32002 NaN);
# no weight or hyper-parameter of a released model should be one.
_NONFINITE_EXPONENT = 32000
# A face net has ~130 layers; the cap only stops a corrupt file from looping for long.
_MAX_LAYERS = 100_000
# dlib's layer_mode enum: per-channel (CONV_MODE) vs per-element (FC_MODE) affine.
AFFINE_CONV_MODE = 0
AFFINE_FC_MODE = 1
# dlib's fc_bias_mode enum.
_FC_HAS_BIAS = 0
_FC_NO_BIAS = 1


class DatStream:
    """Sequential reader of dlib's serialisation primitives over an in-memory file.

    Args:
        data: the whole file.
        source: name used in error messages (usually the path).
    """

    def __init__(self, data: bytes, source: str = "<bytes>") -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def error(self, message: str) -> WeightImportError:
        """A :class:`WeightImportError` that says where in the file it happened."""
        return WeightImportError(f"{self.source} @ byte {self.pos}: {message}")

    def _take(self, nbytes: int, what: str) -> bytes:
        end = self.pos + nbytes
        if end > len(self.data):
            raise self.error(f"{what} needs {nbytes} bytes but the file ends at {len(self.data)}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    @property
    def at_end(self) -> bool:
        """Whether every byte has been consumed."""
        return self.pos == len(self.data)

    def expect_end(self) -> None:
        """Raise unless the whole file has been read (left-over bytes mean a misparse)."""
        if not self.at_end:
            raise self.error(f"{len(self.data) - self.pos} unread bytes after the last field")

    def read_int(self, what: str) -> int:
        """A variable-length integer.

        Args:
            what: the field, for error messages.

        Returns:
            The value.
        """
        control = self._take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.error(f"{what}: bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def read_bool(self, what: str) -> bool:
        """A bool written as the character ``'0'`` or ``'1'``."""
        char = self._take(1, what)
        if char not in (b"0", b"1"):
            raise self.error(f"{what}: expected a bool ('0' or '1'), got {char!r}")
        return char == b"1"

    def read_str(self, what: str) -> str:
        """A length-prefixed ASCII string."""
        size = self.read_int(f"{what} length")
        if not 0 <= size <= 4096:
            raise self.error(f"{what}: implausible string length {size}")
        raw = self._take(size, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.error(f"{what}: not an ASCII string: {raw[:32]!r}") from None

    def expect_str(self, expected: str, what: str) -> None:
        """Read a string and raise unless it is ``expected``."""
        got = self.read_str(what)
        if got != expected:
            raise self.error(f"{what}: expected {expected!r}, got {got!r}")

    def read_float(self, what: str) -> float:
        """A float stored as ``mantissa * 2**exponent`` (two integers)."""
        mantissa = self.read_int(f"{what} mantissa")
        exponent = self.read_int(f"{what} exponent")
        if exponent >= _NONFINITE_EXPONENT:
            raise self.error(f"{what}: non-finite float (exponent code {exponent})")
        return float(mantissa) * 2.0**exponent

    def read_dims(self, what: str) -> tuple[int, int, int, int]:
        """Four non-negative dims ``(n, k, rows, cols)``."""
        dims = tuple(self.read_int(f"{what} dim {i}") for i in range(4))
        if any(d < 0 for d in dims):
            raise self.error(f"{what}: negative dims {dims}")
        return dims[0], dims[1], dims[2], dims[3]

    def read_tensor(self, what: str) -> F32Array:
        """A tensor: version 2, dims, then raw little-endian float32 values.

        Returns:
            A float32 array shaped ``(n, k, rows, cols)`` (a copy, so it owns its memory).
        """
        version = self.read_int(f"{what} version")
        if version != _VERSION_TENSOR:
            raise self.error(f"{what}: tensor version {version}, expected {_VERSION_TENSOR}")
        dims = self.read_dims(what)
        count = int(np.prod(dims, dtype=np.int64))
        raw = self._take(4 * count, f"{what} data")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def read_alias(self, what: str) -> tuple[int, int, int, int]:
        """An alias tensor: version 1 and the dims of a view into a parameter tensor."""
        version = self.read_int(f"{what} version")
        if version != _VERSION_ALIAS:
            raise self.error(f"{what}: alias version {version}, expected {_VERSION_ALIAS}")
        return self.read_dims(what)


# --- layers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossMetric:
    """``loss_metric_``: the metric-learning loss the face net was trained with.

    Attributes:
        margin: the loss margin.
        distance_threshold: the Euclidean distance below which two faces match (dlib's 0.6).
    """

    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class InputRgbImageSized:
    """``input_rgb_image_sized<N>``: fixed-size RGB input, normalised as (p - mean) / 256.

    Attributes:
        mean_rgb: per-channel means subtracted from the 0-255 pixel values.
        rows: required image height.
        cols: required image width.
    """

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True)
class TagOrSkip:
    """A ``tag<N>`` or ``skip<N>`` layer: the file stores neither which one nor ``N``."""


@dataclass(frozen=True)
class Conv:
    """``con_``: a 2-D convolution (cross-correlation, like PyTorch's).

    Attributes:
        weight: ``(out, in, kh, kw)`` filters.
        bias: ``(out,)`` biases.
        stride: ``(y, x)``.
        padding: ``(y, x)`` zero padding on each side.
    """

    weight: F32Array
    bias: F32Array
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    """``affine_``: ``x * gamma + beta`` (dlib's inference-time replacement for batch norm).

    Attributes:
        gamma: scale, shaped like the alias in the file (``(1, C, 1, 1)`` in conv mode).
        beta: shift, same shape.
        mode: :data:`AFFINE_CONV_MODE` (one value per channel) or :data:`AFFINE_FC_MODE`.
    """

    gamma: F32Array
    beta: F32Array
    mode: int


@dataclass(frozen=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True)
class Pool:
    """``max_pool_`` / ``avg_pool_``.

    Attributes:
        kind: ``"max"`` or ``"avg"``.
        window: ``(rows, cols)``; ``(0, 0)`` means the whole image (``*_pool_everything``).
        stride: ``(y, x)``.
        padding: ``(y, x)``.
    """

    kind: Literal["max", "avg"]
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AddPrev:
    """``add_prev_``: adds a tagged earlier output (zero-padding the smaller one)."""


@dataclass(frozen=True)
class FullyConnected:
    """``fc_``.

    Attributes:
        weight: ``(out, in)``, i.e. already transposed from dlib's ``(in, out)`` storage.
        bias: ``(out,)``, or None for ``fc_no_bias``.
    """

    weight: F32Array
    bias: F32Array | None


Layer = TagOrSkip | Conv | Affine | Relu | Pool | AddPrev | FullyConnected


@dataclass(frozen=True)
class DlibNet:
    """A parsed dlib DNN.

    Attributes:
        loss: the loss layer.
        input: the input layer.
        layers: every layer between input and loss, in forward order (first = on the input).
    """

    loss: LossMetric
    input: InputRgbImageSized
    layers: tuple[Layer, ...]


def _read_conv(stream: DatStream, where: str) -> Conv:
    params = stream.read_tensor(f"{where} params")
    num_filters = stream.read_int(f"{where} num_filters")
    rows, cols = stream.read_int(f"{where} nr"), stream.read_int(f"{where} nc")
    stride = (stream.read_int(f"{where} stride_y"), stream.read_int(f"{where} stride_x"))
    padding = (stream.read_int(f"{where} padding_y"), stream.read_int(f"{where} padding_x"))
    filters = stream.read_alias(f"{where} filters")
    biases = stream.read_alias(f"{where} biases")
    for name in ("lr", "weight decay", "bias lr", "bias weight decay"):
        stream.read_float(f"{where} {name} multiplier")  # training-only settings
    out, channels = filters[0], filters[1]
    if filters[0] != num_filters or filters[2:] != (rows, cols):
        raise stream.error(f"{where}: filter alias {filters} vs {num_filters}x?x{rows}x{cols}")
    if biases != (1, num_filters, 1, 1):
        raise stream.error(f"{where}: bias alias {biases}, expected (1, {num_filters}, 1, 1)")
    # One parameter tensor holds the filters (OIHW, like PyTorch) followed by the biases.
    n_weight = out * channels * rows * cols
    flat = params.reshape(-1)
    if flat.size != n_weight + num_filters:
        raise stream.error(f"{where}: {flat.size} params, expected {n_weight} + {num_filters}")
    return Conv(
        weight=flat[:n_weight].reshape(out, channels, rows, cols).copy(),
        bias=flat[n_weight:].copy(),
        stride=stride,
        padding=padding,
    )


def _read_affine(stream: DatStream, where: str) -> Affine:
    params = stream.read_tensor(f"{where} params")
    gamma_shape = stream.read_alias(f"{where} gamma")
    beta_shape = stream.read_alias(f"{where} beta")
    mode = stream.read_int(f"{where} mode")
    if mode not in (AFFINE_CONV_MODE, AFFINE_FC_MODE):
        raise stream.error(f"{where}: unknown affine mode {mode}")
    if gamma_shape != beta_shape:
        raise stream.error(f"{where}: gamma {gamma_shape} and beta {beta_shape} differ")
    # gamma then beta, back to back in the one parameter tensor.
    n = int(np.prod(gamma_shape))
    flat = params.reshape(-1)
    if flat.size != 2 * n:
        raise stream.error(f"{where}: {flat.size} params, expected 2 x {n}")
    return Affine(
        gamma=flat[:n].reshape(gamma_shape).copy(),
        beta=flat[n:].reshape(beta_shape).copy(),
        mode=mode,
    )


def _read_pool(stream: DatStream, where: str, kind: Literal["max", "avg"]) -> Pool:
    window = (stream.read_int(f"{where} nr"), stream.read_int(f"{where} nc"))
    stride = (stream.read_int(f"{where} stride_y"), stream.read_int(f"{where} stride_x"))
    padding = (stream.read_int(f"{where} padding_y"), stream.read_int(f"{where} padding_x"))
    return Pool(kind=kind, window=window, stride=stride, padding=padding)


def _read_fc(stream: DatStream, where: str) -> FullyConnected:
    num_outputs = stream.read_int(f"{where} num_outputs")
    num_inputs = stream.read_int(f"{where} num_inputs")
    params = stream.read_tensor(f"{where} params")
    weights = stream.read_alias(f"{where} weights")
    biases = stream.read_alias(f"{where} biases")
    bias_mode = stream.read_int(f"{where} bias_mode")
    for name in ("lr", "weight decay", "bias lr", "bias weight decay"):
        stream.read_float(f"{where} {name} multiplier")
    if bias_mode not in (_FC_HAS_BIAS, _FC_NO_BIAS):
        raise stream.error(f"{where}: unknown fc bias mode {bias_mode}")
    # dlib keeps the weight matrix as (inputs, outputs): x @ W, the transpose of nn.Linear.
    if weights != (num_inputs, num_outputs, 1, 1):
        raise stream.error(f"{where}: weight alias {weights} vs ({num_inputs}, {num_outputs})")
    flat = params.reshape(-1)
    n_weight = num_inputs * num_outputs
    n_bias = num_outputs if bias_mode == _FC_HAS_BIAS else 0
    if flat.size != n_weight + n_bias:
        raise stream.error(f"{where}: {flat.size} params, expected {n_weight} + {n_bias}")
    if bias_mode == _FC_NO_BIAS and biases != (0, 0, 0, 0):
        raise stream.error(f"{where}: fc_no_bias but a bias alias {biases}")
    if bias_mode == _FC_HAS_BIAS and biases != (1, num_outputs, 1, 1):
        raise stream.error(f"{where}: bias alias {biases}, expected (1, {num_outputs}, 1, 1)")
    weight = flat[:n_weight].reshape(num_inputs, num_outputs).T.copy()
    bias = flat[n_weight:].copy() if n_bias else None
    return FullyConnected(weight=weight, bias=bias)


def _read_layer(stream: DatStream, index: int) -> Layer:
    """One ``add_layer``'s own fields: type string, the type's settings."""
    where = f"layer {index}"
    kind = stream.read_str(f"{where} type")
    where = f"layer {index} ({kind})"
    layer: Layer
    # Versioned type names: a newer dlib that changed a layer's fields also changed its name
    # (con_4 -> con_5 added use_bias), so an exact match is the format check.
    if kind == "con_4":
        layer = _read_conv(stream, where)
    elif kind == "affine_":
        layer = _read_affine(stream, where)
    elif kind == "relu_":
        layer = Relu()
    elif kind == "max_pool_2":
        layer = _read_pool(stream, where, "max")
    elif kind == "avg_pool_2":
        layer = _read_pool(stream, where, "avg")
    elif kind == "add_prev_":
        layer = AddPrev()
    elif kind == "fc_2":
        layer = _read_fc(stream, where)
    else:
        raise stream.error(f"{where}: unsupported layer type {kind!r}")
    return layer


def _skip_training_state(stream: DatStream, where: str, on_input: bool) -> None:
    """The per-``add_layer`` state after its settings: 3 flags and 3 (usually empty) tensors.

    They are setup/caching flags and gradient/output buffers, meaningless for inference, but
    they must be consumed to reach the next layer. The layer on the input keeps the gradient
    with respect to the input image where the others keep their parameter gradient.
    """
    for flag in ("setup_called", "gradient_input_is_stale", "output_and_gradient_disabled"):
        stream.read_bool(f"{where} {flag}")
    last = "grad_final" if on_input else "params_grad"
    for buffer in ("x_grad", "cached_output", last):
        stream.read_tensor(f"{where} {buffer}")


def parse_dlib_net(data: bytes, source: str = "<bytes>") -> DlibNet:
    """Parse a serialised dlib metric-learning network with an ``input_rgb_image_sized`` input.

    Args:
        data: the file's bytes.
        source: name used in error messages.

    Returns:
        The loss, the input layer and the layers in forward order.

    Raises:
        WeightImportError: on any unexpected version, type name, shape or trailing bytes.
    """
    stream = DatStream(data, source)
    version = stream.read_int("loss version")
    if version != _VERSION_LOSS:
        raise stream.error(f"add_loss_layer version {version}, expected {_VERSION_LOSS}")
    stream.expect_str("loss_metric_2", "loss type")
    loss = LossMetric(
        margin=stream.read_float("loss margin"),
        distance_threshold=stream.read_float("loss distance threshold"),
    )

    # Versions come outermost first and end with the layer that sits on the input.
    versions: list[int] = []
    while not versions or versions[-1] != _VERSION_LAYER_ON_INPUT:
        version = stream.read_int(f"version of layer {len(versions)} (from the output)")
        if version not in (_VERSION_TAG_OR_SKIP, _VERSION_LAYER, _VERSION_LAYER_ON_INPUT):
            raise stream.error(f"unknown layer wrapper version {version}")
        versions.append(version)
        if len(versions) > _MAX_LAYERS:
            raise stream.error(f"more than {_MAX_LAYERS} layers; not a dlib net")

    stream.expect_str("input_rgb_image_sized", "input type")
    mean = tuple(stream.read_float(f"input mean {c}") for c in "rgb")
    rows, cols = stream.read_int("input rows"), stream.read_int("input cols")
    net_input = InputRgbImageSized(mean_rgb=(mean[0], mean[1], mean[2]), rows=rows, cols=cols)

    layers: list[Layer] = []
    for index, version in enumerate(reversed(versions)):
        if version == _VERSION_TAG_OR_SKIP:
            layers.append(TagOrSkip())
            continue
        layers.append(_read_layer(stream, index))
        on_input = version == _VERSION_LAYER_ON_INPUT
        _skip_training_state(stream, f"layer {index}", on_input)
        if on_input:
            factor = stream.read_int(f"layer {index} sample_expansion_factor")
            if factor != 1:
                raise stream.error(f"sample expansion factor {factor}; expected 1 (one image)")
    stream.expect_end()
    return DlibNet(loss=loss, input=net_input, layers=tuple(layers))


def read_dlib_net(path: str | Path) -> DlibNet:
    """Read and parse a dlib ``.dat`` network file (see :func:`parse_dlib_net`).

    Args:
        path: the ``.dat`` file (uncompressed; dlib's own releases are ``.dat.bz2``).

    Returns:
        The parsed network.
    """
    path = Path(path)
    return parse_dlib_net(path.read_bytes(), str(path))
