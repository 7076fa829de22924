"""Triton clients: the asynchronous one pipelines infer with (KServe v2 over gRPC), and the
small synchronous one commands use to load models into a running server (the repository API
over HTTP, as Triton's explicit model control mode expects)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import tritonclient.grpc.aio as grpcclient
from numpy.typing import NDArray
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from gantry.core.errors import Unavailable, UpstreamFailed
from gantry.serving.metrics import TRITON_LATENCY


class TritonClient:
    """Readiness and infer on numpy arrays, with Triton failures as error kinds."""

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

    async def model_ready(self, name: str, version: int | None = None) -> bool:
        try:
            ready = await self.client.is_model_ready(
                name, "" if version is None else str(version), client_timeout=2.0
            )
            return bool(ready)
        except (InferenceServerException, OSError):
            return False

    async def infer(
        self,
        model: str,
        inputs: Mapping[str, NDArray[Any]],
        outputs: list[str],
        *,
        version: int | None = None,
    ) -> dict[str, NDArray[Any]]:
        """Run one request on ``model`` (``version``, or Triton's choice when None).

        Raises:
            Unavailable: Triton did not answer (down, restarting, deadline passed).
            UpstreamFailed: Triton answered with an error.
        """
        infer_inputs = []
        for name, array in inputs.items():
            tensor = grpcclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            infer_inputs.append(tensor)
        requested = [grpcclient.InferRequestedOutput(name) for name in outputs]
        start = time.perf_counter()
        try:
            result = await self.client.infer(
                model,
                infer_inputs,
                model_version="" if version is None else str(version),
                outputs=requested,
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            status = str(exc.status() or "")
            if "UNAVAILABLE" in status or "DEADLINE" in status:
                raise Unavailable(
                    "triton_unavailable", f"the inference server did not answer: {exc}"
                ) from exc
            raise UpstreamFailed("inference_failed", f"{model}: {exc.message()}") from exc
        finally:
            TRITON_LATENCY.labels(model=model).observe(time.perf_counter() - start)
        return {name: result.as_numpy(name) for name in outputs}


class TritonControl:
    """Triton's model repository API (HTTP), for commands that publish model versions."""

    def __init__(self, url: str, *, timeout_s: float = 120.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def _client(self) -> Any:
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(
            self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
        )

    def is_live(self) -> bool:
        try:
            return bool(self._client().is_server_live())
        except Exception:  # refused, reset, timed out: all mean "no server to load into"
            return False

    def load(self, name: str) -> None:
        """(Re)load ``name``: Triton reads its directory again, loads new versions and keeps
        the unchanged ones serving.

        Raises:
            Unavailable: no Triton answers.
            UpstreamFailed: Triton could not load the model (its message says why).
        """
        try:
            self._client().load_model(name)
        except InferenceServerException as exc:
            raise UpstreamFailed("load_failed", f"Triton could not load {name}: {exc}") from exc
        except OSError as exc:
            raise Unavailable("triton_unavailable", f"no Triton at {self.url}: {exc}") from exc

    def index(self) -> list[dict[str, Any]]:
        """The repository index: one entry per model version with its state (READY, ...)."""
        entries: list[dict[str, Any]] = self._client().get_model_repository_index()
        return entries
