"""/healthz, /readyz, /metrics and /v1/models."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gantry.core.settings import Settings
from gateway.app import create_app
from tests.conftest import free_port
from tests.paths import SET5


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert "realesrgan-x4plus" in ready.json()["models"]


def test_models_list_reads_the_cards(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert {"realesrgan-x4plus", "realesr-animevideov3-x2", "realesr-animevideov3-x4"} <= set(
        models
    )
    x4plus = models["realesrgan-x4plus"]
    assert x4plus["task"] == "superres" and x4plus["scale"] == 4 and x4plus["ready"]
    assert "BSD-3-Clause" in x4plus["license"]
    assert x4plus["parity_max_abs_err"] < 1e-3
    assert models["realesr-animevideov3-x2"]["scale"] == 2
    for name in ("cyclegan-vintagify", "pix2pix-facades"):  # served by POST /v1/translate
        assert models[name]["task"] == "image_to_image" and models[name]["ready"]
    assert models["pix2pix-facades"]["research_only"]


def test_metrics_count_requests_and_tiles(client: TestClient) -> None:
    data = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
    client.post(
        "/v1/superres", files={"image": ("b.png", data)}, data={"model": "realesr-animevideov3-x2"}
    )
    client.post("/v1/translate", files={"image": ("b.png", data)})
    text = client.get("/metrics").text
    assert 'gantry_superres_tiles_total{model="realesr-animevideov3-x2"}' in text
    assert 'gantry_http_requests_total{route="/v1/superres",status="200"}' in text
    assert 'gantry_superres_tiles_total{model="cyclegan-vintagify"}' in text
    assert 'gantry_http_requests_total{route="/v1/translate",status="200"}' in text


def test_not_ready_without_triton(gateway_settings: Settings) -> None:
    nowhere = gateway_settings.model_copy(update={"triton_grpc_port": free_port()})
    with TestClient(create_app(nowhere)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "not_ready"
        assert client.get("/healthz").status_code == 200
