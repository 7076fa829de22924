"""The ONNX Runtime runner behind the Python-based Triton backend, without Triton."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from deploy.triton.ort_runner import OrtRunner, config_parameter


def _double_model(path: Path) -> Path:
    """y = 2 * x with a dynamic batch and width."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 3, "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3, "w"])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["y"])], "g", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


CONFIG = {
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [3, -1]}],
    "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": [3, -1]}],
    "parameters": {"intra_op_thread_count": {"string_value": "1"}},
}


def test_requests_of_equal_shape_are_run_as_one_batch(tmp_path: Path) -> None:
    runner = OrtRunner(_double_model(tmp_path / "m.onnx"), CONFIG)
    calls: list[int] = []
    original = runner.run

    def counting(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
        calls.append(inputs["x"].shape[0])
        return original(inputs)

    runner.run = counting  # type: ignore[method-assign]
    requests = [{"x": np.full((1, 3, 4), i, np.float32)} for i in range(3)] + [
        {"x": np.ones((2, 3, 5), np.float32)}
    ]
    results = runner.run_requests(requests)
    assert sorted(calls) == [2, 3]  # one run for the three 4-wide requests, one for the other
    for i in range(3):
        np.testing.assert_array_equal(results[i]["y"], np.full((1, 3, 4), 2 * i))
    assert results[3]["y"].shape == (2, 3, 5)


def test_reads_triton_args(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    _double_model(tmp_path / "1" / "model.onnx")
    args = {
        "model_config": json.dumps(CONFIG),
        "model_repository": str(tmp_path),
        "model_version": "1",
    }
    runner = OrtRunner.from_triton_args(args)
    assert runner.input_names == ["x"] and runner.output_names == ["y"]
    assert config_parameter(CONFIG, "intra_op_thread_count", "0") == "1"
    assert config_parameter(CONFIG, "missing", "7") == "7"
