"""Reading a TFLite flatbuffer: tensors with their constant data, operators with options.

A ``.tflite`` file is a FlatBuffer of the TensorFlow Lite schema: a ``Model`` with operator
codes, buffers (raw little-endian bytes; buffer 0 is the empty sentinel) and subgraphs. A
subgraph lists tensors (name, shape, element type, buffer index: a constant when that buffer
holds data) and operators in execution order (opcode index, input and output tensor indices,
-1 for an omitted optional input, and a typed options table). The generated schema of the
``tflite`` pip package does the FlatBuffer decoding; this module turns one subgraph into plain
dataclasses, with constants as numpy arrays in the file's layout (TFLite's: NHWC activations,
``CONV_2D`` weights ``(O, H, W, I)``, ``DEPTHWISE_CONV_2D`` weights ``(1, H, W, C)``).

Only float32 and int32 tensors and the convolution and elementwise options are decoded;
anything else raises, so a family mapping never reads a value it did not expect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from trainer.weights.errors import WeightImportError

_DTYPES = {0: np.dtype("<f4"), 2: np.dtype("<i4")}  # TensorType.FLOAT32, INT32
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


@dataclass(frozen=True)
class TfliteTensor:
    """One tensor of the subgraph; ``data`` is set for constants."""

    index: int
    name: str
    shape: tuple[int, ...]
    data: npt.NDArray[Any] | None


@dataclass(frozen=True)
class TfliteOp:
    """One operator, in execution order.

    ``options`` holds, for ``CONV_2D`` / ``DEPTHWISE_CONV_2D``: ``stride`` (h, w),
    ``padding`` ("SAME"/"VALID"), ``dilation`` (h, w), ``activation`` (fused, "NONE" ...)
    and for depthwise ``depth_multiplier``; for ``ADD`` / ``SUB`` / ``MUL``: ``activation``.
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TfliteGraph:
    """The first subgraph of a model: tensors, operators, graph inputs and outputs."""

    tensors: tuple[TfliteTensor, ...]
    ops: tuple[TfliteOp, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def constant(self, index: int) -> npt.NDArray[Any]:
        """The data of constant tensor ``index``.

        Raises:
            WeightImportError: the tensor is not a constant.
        """
        data = self.tensors[index].data
        if data is None:
            raise WeightImportError(f"tensor {self.tensors[index].name!r} is not a constant")
        return data

    def consumers(self) -> dict[int, list[TfliteOp]]:
        """Tensor index → the operators reading it, in execution order."""
        users: dict[int, list[TfliteOp]] = {}
        for op in self.ops:
            for i in op.inputs:
                users.setdefault(i, []).append(op)
        return users

    def producer(self) -> dict[int, TfliteOp]:
        """Tensor index → the operator writing it."""
        return {i: op for op in self.ops for i in op.outputs}


def _options(opcode: str, op: Any) -> dict[str, Any]:
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}
    if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        conv = tflite.Conv2DOptions() if opcode == "CONV_2D" else tflite.DepthwiseConv2DOptions()
        conv.Init(table.Bytes, table.Pos)
        options: dict[str, Any] = {
            "stride": (conv.StrideH(), conv.StrideW()),
            "padding": _PADDING.get(conv.Padding(), str(conv.Padding())),
            "dilation": (conv.DilationHFactor(), conv.DilationWFactor()),
            "activation": _ACTIVATION.get(conv.FusedActivationFunction(), "OTHER"),
        }
        if opcode == "DEPTHWISE_CONV_2D":
            options["depth_multiplier"] = conv.DepthMultiplier()
        return options
    elementwise = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions"}
    if opcode in elementwise:
        table_type = getattr(tflite, elementwise[opcode])()
        table_type.Init(table.Bytes, table.Pos)
        return {"activation": _ACTIVATION.get(table_type.FusedActivationFunction(), "OTHER")}
    return {}


def read_tflite(data: bytes, name: str = "model.tflite") -> TfliteGraph:
    """Parse a ``.tflite`` file's first subgraph.

    Args:
        data: the file's bytes.
        name: the file name, for error messages.

    Raises:
        WeightImportError: not a TFLite model (no ``TFL3`` identifier), more than one
            subgraph, external buffers, or a constant of a type this reader does not decode.
    """
    import tflite

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise WeightImportError(f"{name}: not a TFLite flatbuffer (no TFL3 identifier)")
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise WeightImportError(f"{name}: {model.SubgraphsLength()} subgraphs, expected one")
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Schema 3.x keeps codes below 127 in the deprecated byte; the int field is newer.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        codes.append(tflite.opcode2name(builtin))
    graph = model.Subgraphs(0)

    tensors = []
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        tensor_name = tensor.Name().decode()
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        buffer = model.Buffers(tensor.Buffer())
        array = None
        if buffer.DataLength():
            dtype = _DTYPES.get(tensor.Type())
            if dtype is None:
                raise WeightImportError(
                    f"{name}: constant {tensor_name!r} has TensorType {tensor.Type()}, "
                    "only float32 and int32 are read"
                )
            raw = buffer.DataAsNumpy().tobytes()
            array = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
            if array.size != int(np.prod(shape, dtype=np.int64)):
                raise WeightImportError(
                    f"{name}: constant {tensor_name!r} holds {array.size} values for shape {shape}"
                )
            array = array.reshape(shape)
        elif buffer.Offset():
            raise WeightImportError(f"{name}: {tensor_name!r} lives outside the flatbuffer")
        tensors.append(TfliteTensor(i, tensor_name, shape, array))

    ops = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        opcode = codes[op.OpcodeIndex()]
        ops.append(
            TfliteOp(
                index=k,
                opcode=opcode,
                inputs=tuple(int(i) for i in op.InputsAsNumpy() if i >= 0),
                outputs=tuple(int(i) for i in op.OutputsAsNumpy()),
                options=_options(opcode, op),
            )
        )
    return TfliteGraph(
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(int(i) for i in graph.InputsAsNumpy()),
        outputs=tuple(int(i) for i in graph.OutputsAsNumpy()),
    )
