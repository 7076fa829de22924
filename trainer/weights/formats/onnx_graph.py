"""Reading the convolutions of an ONNX graph: constant weights, biases and attributes.

Exporters fold BatchNorm into convolutions and de-duplicate shared constants behind
``Identity`` nodes; :func:`graph_convs` resolves both, so a family mapping can pair each
convolution with its module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trainer.weights.errors import WeightImportError


@dataclass(frozen=True)
class OnnxConv:
    """One Conv node with its constant weight and bias resolved through Identity aliases."""

    name: str
    input: str
    output: str
    weight_name: str
    weight: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    attrs: dict[str, Any]


def graph_convs(graph: Any) -> tuple[list[OnnxConv], dict[str, list[Any]]]:
    """Every Conv of ``graph`` (an ``onnx.GraphProto``) in graph order, and a map tensor name
    → nodes consuming it.

    Raises:
        WeightImportError: a Conv without a constant weight and (folded) bias.
    """
    import onnx
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    # The exporter de-duplicated shared weights into Identity nodes; follow them back.
    alias: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in consts:
            alias[node.output[0]] = node.input[0]
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    convs: list[OnnxConv] = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) != 3:
            raise WeightImportError(f"{node.name}: expected a conv with a (folded) bias")
        weight_name = alias.get(node.input[1], node.input[1])
        bias_name = alias.get(node.input[2], node.input[2])
        if weight_name not in consts or bias_name not in consts:
            raise WeightImportError(f"{node.name}: weight or bias is not a constant")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        convs.append(
            OnnxConv(
                name=node.name,
                input=node.input[0],
                output=node.output[0],
                weight_name=weight_name,
                weight=consts[weight_name].astype(np.float32),
                bias=consts[bias_name].astype(np.float32),
                attrs=attrs,
            )
        )
    return convs, consumers
