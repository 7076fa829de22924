"""The real tritonserver, with the Python-based onnxruntime backend, over HTTP and gRPC."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from numpy.typing import NDArray

from gantry.core.repository import ModelRepository
from gantry.core.settings import Settings

MODEL = "realesr-animevideov3-x4"


def _probe(seed: int = 0, size: int = 40) -> NDArray[Any]:
    return np.random.default_rng(seed).random((1, 3, size, size), np.float32)


@pytest.mark.usefixtures("triton")
def test_every_built_model_is_ready_with_the_cards_config(triton_settings: Settings) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton_settings.triton_http_port}")
    try:
        for name, built in (
            ModelRepository(triton_settings.model_repository).default_cards().items()
        ):
            assert client.is_model_ready(name)
            config = client.get_model_config(name)
            assert config["backend"] == "onnxruntime"
            assert config["max_batch_size"] == built.card.max_batch_size
            assert [i["name"] for i in config["input"]] == [t.name for t in built.card.inputs]
            assert config["dynamic_batching"]["max_queue_delay_microseconds"] > 0
    finally:
        client.close()


@pytest.mark.usefixtures("triton")
def test_http_and_grpc_return_what_onnxruntime_returns_in_process(
    triton_settings: Settings,
) -> None:
    x = _probe()
    session = ort.InferenceSession(
        str(triton_settings.model_repository / MODEL / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    (expected,) = session.run(["upscaled"], {"image": x})

    http = httpclient.InferenceServerClient(f"127.0.0.1:{triton_settings.triton_http_port}")
    tensor = httpclient.InferInput("image", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    via_http = http.infer(MODEL, [tensor]).as_numpy("upscaled")
    http.close()

    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{triton_settings.triton_grpc_port}")
    gtensor = grpcclient.InferInput("image", list(x.shape), "FP32")
    gtensor.set_data_from_numpy(x)
    via_grpc = grpc.infer(MODEL, [gtensor]).as_numpy("upscaled")
    grpc.close()

    assert via_http.shape == (1, 3, 160, 160)
    np.testing.assert_allclose(via_http, expected, atol=1e-5)
    np.testing.assert_allclose(via_grpc, expected, atol=1e-5)


@pytest.mark.usefixtures("triton")
def test_concurrent_requests_are_batched_and_answered_separately(triton_settings: Settings) -> None:
    url = f"127.0.0.1:{triton_settings.triton_grpc_port}"
    inputs = [_probe(seed) for seed in range(6)]

    def call(x: NDArray[Any]) -> NDArray[Any]:
        client = grpcclient.InferenceServerClient(url)
        tensor = grpcclient.InferInput("image", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        try:
            return client.infer(MODEL, [tensor]).as_numpy("upscaled")
        finally:
            client.close()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        outputs = list(pool.map(call, inputs))
    session = ort.InferenceSession(
        str(triton_settings.model_repository / MODEL / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    # Each answer belongs to its own request, even when the batcher merged them.
    for x, y in zip(inputs, outputs, strict=True):
        (expected,) = session.run(["upscaled"], {"image": x})
        np.testing.assert_allclose(y, expected, atol=1e-5)
    stats = httpclient.InferenceServerClient(
        f"127.0.0.1:{triton_settings.triton_http_port}"
    ).get_inference_statistics(MODEL)
    model_stats = stats["model_stats"][0]
    assert int(model_stats["inference_count"]) >= 6


@pytest.mark.usefixtures("triton")
def test_bad_shape_fails_the_request_not_the_server(triton_settings: Settings) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton_settings.triton_grpc_port}")
    bad = np.zeros((1, 4, 16, 16), np.float32)
    tensor = grpcclient.InferInput("image", list(bad.shape), "FP32")
    tensor.set_data_from_numpy(bad)
    try:
        client.infer(MODEL, [tensor])
        raise AssertionError("a 4-channel input must be refused")
    except Exception as exc:  # tritonclient raises InferenceServerException
        assert "image" in str(exc) or "shape" in str(exc).lower()
    assert client.is_server_live() and client.is_model_ready(MODEL)
    client.close()
