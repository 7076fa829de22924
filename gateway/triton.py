"""The gateway's asynchronous Triton client (KServe v2 over gRPC)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import tritonclient.grpc.aio as grpcclient
from numpy.typing import NDArray
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from gateway.errors import GantryError
from gateway.metrics import TRITON_LATENCY


class TritonGateway:
    """Thin typed wrapper: readiness, and infer on numpy arrays with clear errors."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client: grpcclient.InferenceServerClient | None = None

    @property
    def client(self) -> grpcclient.InferenceServerClient:
        # Created lazily, inside the running event loop that will use it.
        if self._client is None:
            self._client = grpcclient.InferenceServerClient(self.url)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def server_ready(self) -> bool:
        try:
            return bool(await self.client.is_server_ready(client_timeout=2.0))
        except (InferenceServerException, OSError):
            return False

    async def model_ready(self, name: str, version: str = "") -> bool:
        try:
            return bool(await self.client.is_model_ready(name, version, client_timeout=2.0))
        except (InferenceServerException, OSError):
            return False

    async def infer(
        self, model: str, inputs: Mapping[str, NDArray[Any]], outputs: list[str]
    ) -> dict[str, NDArray[Any]]:
        """Run one request; Triton errors become 503 (unreachable) or 502 (failed)."""
        infer_inputs = []
        for name, array in inputs.items():
            tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            infer_inputs.append(tensor)
        requested = [grpcclient.InferRequestedOutput(name) for name in outputs]
        start = time.perf_counter()
        try:
            result = await self.client.infer(
                model, infer_inputs, outputs=requested, client_timeout=self.timeout_s
            )
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            if "UNAVAILABLE" in status or "DEADLINE" in status:
                raise GantryError(
                    503, "triton_unavailable", f"the inference server did not answer: {exc}"
                ) from exc
            raise GantryError(502, "inference_failed", f"{model}: {exc.message()}") from exc
        finally:
            TRITON_LATENCY.labels(model=model).observe(time.perf_counter() - start)
        return {name: result.as_numpy(name) for name in outputs}
