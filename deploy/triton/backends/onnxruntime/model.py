"""Triton Python-based backend named ``onnxruntime``: runs ``<version>/model.onnx`` in-process.

Triton loads ``backends/onnxruntime/model.py`` for every model whose config says
``backend: "onnxruntime"`` when no native ``libtriton_onnxruntime.so`` is installed, so the
same model repository runs here and in NVIDIA's container. All logic is in
``deploy.triton.ort_runner``; this file only converts between Triton and numpy.
"""

from __future__ import annotations

from typing import Any

import triton_python_backend_utils as pb_utils

from deploy.triton.ort_runner import OrtRunner


class TritonPythonModel:
    """The per-instance model object Triton drives."""

    def initialize(self, args: dict[str, str]) -> None:
        self.runner = OrtRunner.from_triton_args(args)

    def execute(self, requests: list[Any]) -> list[Any]:
        arrays = [
            {
                name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                for name in self.runner.input_names
            }
            for request in requests
        ]
        try:
            results = self.runner.run_requests(arrays)
        except Exception as exc:  # a bad input must fail its requests, not the server
            error = pb_utils.TritonError(f"onnxruntime: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        return [
            pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(name, value) for name, value in result.items()]
            )
            for result in results
        ]

    def finalize(self) -> None:
        del self.runner
