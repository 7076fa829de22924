"""GANTRY_AUTH_MODE=keys: keys made with `gantry keys`, over REST and gRPC, with scopes and
rates; health, readiness, docs, gRPC health and reflection stay open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gantry.core.settings import Settings
from gateway.app import create_app
from gateway.grpc.protos import ensure_generated
from tests.conftest import free_port, run_gantry
from tests.paths import DATA

ensure_generated()

from gantry.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402  (generated just above)

OBAMA = (DATA / "faces_verify" / "face_recognition_knn" / "obama" / "obama.jpg").read_bytes()


@pytest.fixture()
def keyed(triton: object, gateway_settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """An app with keys on (its own key store and gRPC port), and a key maker."""
    settings = gateway_settings.model_copy(
        update={"auth_mode": "keys", "state_dir": tmp_path / "state", "grpc_port": free_port()}
    )
    env = settings.child_env()

    def make(name: str, *options: str) -> str:
        made = run_gantry(env, "keys", "create", name, *options)
        assert made.returncode == 0, made.stdout + made.stderr
        return made.stdout.strip().splitlines()[-1]  # the key, alone on the last line

    with TestClient(create_app(settings)) as client:
        yield client, make, env, settings


def _detect(client: TestClient, **headers: str) -> Any:
    return client.post("/v1/faces/detect", files={"image": ("o.jpg", OBAMA)}, headers=headers)


def test_rest_needs_a_key_in_scope_and_under_its_rate(keyed: Any) -> None:
    client, make, env, _ = keyed
    for path in ("/v1/models", "/v1/jobs", "/metrics"):
        assert client.get(path).status_code == 401
    response = _detect(client)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path

    key = make("app")
    assert key.startswith("gk_")
    assert _detect(client, **{"X-API-Key": key}).status_code == 200
    assert _detect(client, Authorization=f"Bearer {key}").status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": key}).status_code == 403  # admin only

    faces_only = make("faces-only", "--scopes", "faces")
    denied = client.post(
        "/v1/superres", files={"image": ("o.jpg", OBAMA)}, headers={"X-API-Key": faces_only}
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    denied = client.post(
        "/v1/translate", files={"image": ("o.jpg", OBAMA)}, headers={"X-API-Key": faces_only}
    )
    assert denied.status_code == 403 and "this needs translate" in denied.json()["error"]["message"]

    slow = make("slow", "--rate", "2/second", "--scopes", "faces")
    codes = [client.get("/v1/models", headers={"X-API-Key": slow}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.get("/v1/models", headers={"X-API-Key": slow})
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    time.sleep(0.6)
    assert client.get("/v1/models", headers={"X-API-Key": slow}).status_code == 200

    listed = run_gantry(env, "keys", "list")
    assert "app" in listed.stdout and key not in listed.stdout and key[:10] in listed.stdout
    revoked = run_gantry(env, "keys", "revoke", "app")
    assert revoked.returncode == 0
    assert _detect(client, **{"X-API-Key": key}).status_code == 401
    again = run_gantry(env, "keys", "revoke", "app")
    assert again.returncode == 1 and "revoked already" in again.stdout
    duplicate = run_gantry(env, "keys", "create", "slow")
    assert duplicate.returncode == 1 and "exists" in duplicate.stdout


def test_grpc_needs_the_key_in_metadata(keyed: Any) -> None:
    _, make, _, settings = keyed
    key = make("grpc-client")
    with grpc.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        stub = faces_pb2_grpc.FaceVerificationStub(channel)
        request = faces_pb2.DetectRequest(image=OBAMA)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Detect(request, timeout=60)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as wrong:
            stub.Detect(request, timeout=60, metadata=(("x-api-key", "gk_nope"),))
        assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
        found = stub.Detect(request, timeout=60, metadata=(("x-api-key", key),))
        assert len(found.faces) >= 1
        # Health and reflection stay open.
        checked = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert checked.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        (answer,) = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for s in answer.list_services_response.service}
        assert "gantry.v1.FaceVerification" in names


def test_the_document_declares_the_keys(keyed: Any) -> None:
    client = keyed[0]
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    detect = spec["paths"]["/v1/faces/detect"]["post"]
    assert {"ApiKey": []} in detect["security"] and "401" in detect["responses"]
    assert "security" not in spec["paths"]["/healthz"]["get"]
