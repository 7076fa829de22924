"""ONNX Runtime execution for the Python-based ``onnxruntime`` Triton backend.

NVIDIA's Triton container has a native C++ ONNX Runtime backend; the `tritonserver` that the
``nvidia-pytriton`` wheel ships has only the Python backend. This module is what the shim
``backends/onnxruntime/model.py`` delegates to, kept free of Triton imports so it is tested
directly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_NUMPY_DTYPES = {
    "TYPE_FP32": np.float32,
    "TYPE_FP16": np.float16,
    "TYPE_UINT8": np.uint8,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
}


def config_parameter(config: Mapping[str, Any], key: str, default: str) -> str:
    """A ``parameters { key: ... }`` string value from a parsed model config."""
    params = config.get("parameters") or {}
    entry = params.get(key)
    if not entry:
        return default
    return str(entry.get("string_value", default))


class OrtRunner:
    """One ONNX Runtime session serving the requests of one Triton model instance."""

    def __init__(self, model_path: Path, config: Mapping[str, Any]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        intra = int(config_parameter(config, "intra_op_thread_count", "0"))
        inter = int(config_parameter(config, "inter_op_thread_count", "1"))
        if intra > 0:
            options.intra_op_num_threads = intra
        options.inter_op_num_threads = max(inter, 1)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [t["name"] for t in config["input"]]
        self.output_names = [t["name"] for t in config["output"]]
        self.output_dtypes = {t["name"]: _NUMPY_DTYPES[t["data_type"]] for t in config["output"]}

    @classmethod
    def from_triton_args(cls, args: Mapping[str, str]) -> OrtRunner:
        """Build from the ``args`` Triton passes to ``initialize``."""
        config = json.loads(args["model_config"])
        filename = config.get("default_model_filename") or "model.onnx"
        model_path = Path(args["model_repository"]) / args["model_version"] / filename
        return cls(model_path, config)

    def run(self, inputs: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """One session run on already batched inputs."""
        outputs = self.session.run(self.output_names, inputs)
        return {
            name: np.ascontiguousarray(value, dtype=self.output_dtypes[name])
            for name, value in zip(self.output_names, outputs, strict=True)
        }

    def run_requests(
        self, requests: Sequence[dict[str, NDArray[Any]]]
    ) -> list[dict[str, NDArray[Any]]]:
        """Run a list of requests, batching together those whose inputs have the same shape.

        Triton's dynamic batcher hands the backend several requests at once; concatenating
        them along the batch axis is what makes dynamic batching pay off on CPU.
        """
        groups: dict[tuple[tuple[int, ...], ...], list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            key = tuple(request[name].shape[1:] for name in self.input_names)
            groups[key].append(index)
        results: list[dict[str, NDArray[Any]]] = [{} for _ in requests]
        for indices in groups.values():
            batched = {
                name: np.concatenate([requests[i][name] for i in indices], axis=0)
                if len(indices) > 1
                else requests[indices[0]][name]
                for name in self.input_names
            }
            outputs = self.run(batched)
            offset = 0
            for i in indices:
                size = requests[i][self.input_names[0]].shape[0]
                results[i] = {k: v[offset : offset + size] for k, v in outputs.items()}
                offset += size
        return results
