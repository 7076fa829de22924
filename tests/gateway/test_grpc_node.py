"""A Node client built from protos/gantry/v1/faces.proto alone gets the Python/REST answer.

Needs `node` and tests/grpc_node/node_modules (`npm ci --prefix tests/grpc_node`, which
`make test` runs); without them the test fails rather than skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient

from gantry.core.settings import Settings
from gateway.grpc.protos import ensure_generated
from tests.paths import DATA, REPO

ensure_generated()

from gantry.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402  (generated just above)

NODE_DIR = REPO / "tests" / "grpc_node"
CLIENT = NODE_DIR / "verify_client.js"
OBAMA = DATA / "faces_verify" / "face_recognition_knn" / "obama" / "obama.jpg"
OBAMA2 = DATA / "faces_verify" / "face_recognition_knn" / "obama" / "obama2.jpg"
TIMEOUT_S = 120.0


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("`node` is not on PATH: the Node gRPC client test needs Node; run `make test`")
    for package in ("@grpc/grpc-js", "@grpc/proto-loader"):
        if not (NODE_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(
                f"tests/grpc_node/node_modules/{package} is missing: run `make test` "
                "(it runs `npm ci --prefix tests/grpc_node`)"
            )
    return node


def test_node_client_verifies_like_python_and_rest(
    client: TestClient, gateway_settings: Settings
) -> None:
    node = node_executable()
    target = f"127.0.0.1:{gateway_settings.grpc_port}"
    run = subprocess.run(
        [node, str(CLIENT), str(OBAMA), str(OBAMA2)],
        env={**os.environ, "GANTRY_GRPC": target},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 0, f"node client failed ({run.returncode}):\n{run.stderr}"
    out: dict[str, Any] = json.loads(run.stdout)
    verify = out["verify"]

    with grpc.insecure_channel(target) as channel:
        stub = faces_pb2_grpc.FaceVerificationStub(channel)
        python = stub.Verify(
            faces_pb2.VerifyRequest(image_a=OBAMA.read_bytes(), image_b=OBAMA2.read_bytes()),
            timeout=TIMEOUT_S,
        )
        detect = stub.Detect(faces_pb2.DetectRequest(image=OBAMA.read_bytes()), timeout=TIMEOUT_S)
    rest = client.post(
        "/v1/faces/verify",
        files={
            "image_a": (OBAMA.name, OBAMA.read_bytes()),
            "image_b": (OBAMA2.name, OBAMA2.read_bytes()),
        },
    ).json()

    assert isinstance(verify["match"], bool)
    assert verify["similarity"] == pytest.approx(python.similarity, abs=1e-5)
    assert verify["similarity"] == pytest.approx(rest["similarity"], abs=1e-5)
    assert verify["match"] is python.match is rest["match"]
    assert verify["threshold"] == pytest.approx(python.threshold, abs=1e-6)
    assert verify["model"] == python.model == rest["model"]
    assert verify["id"] == "node"
    assert verify["error"] is None  # unset message field, as proto-loader decodes it
    assert len(verify["face_a"]["embedding"]) == len(verify["face_b"]["embedding"]) == 128
    landmarks = verify["face_a"]["landmarks"]
    assert len(landmarks) == 5 and all(set(p) == {"x", "y"} for p in landmarks)

    assert out["detect"]["face_count"] == len(detect.faces) >= 1
    assert (out["detect"]["width"], out["detect"]["height"]) == (detect.width, detect.height)


def test_node_client_exits_non_zero_on_a_grpc_error(
    client: TestClient, gateway_settings: Settings
) -> None:
    node = node_executable()
    faceless = DATA / "superres" / "Set5" / "HR" / "butterfly.png"
    run = subprocess.run(
        [node, str(CLIENT), str(OBAMA), str(faceless)],
        env={**os.environ, "GANTRY_GRPC": f"127.0.0.1:{gateway_settings.grpc_port}"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode != 0
    assert run.stdout == ""
    assert "INVALID_ARGUMENT" in run.stderr and "no_face" in run.stderr
