"""POST /v1/superres through the gateway and the real Triton, on real images."""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from gantry.core.settings import Settings
from gateway.app import create_app
from tests.paths import REAL_INPUTS, SET5

FAST = "realesr-animevideov3-x4"
BABY = SET5 / "LR_bicubic" / "X4" / "babyx4.png"


def _post(client: TestClient, path, **fields: str):  # type: ignore[no-untyped-def]
    data = path.read_bytes() if hasattr(path, "read_bytes") else path
    return client.post("/v1/superres", files={"image": ("in", data)}, data=fields)


def _rgb(body: bytes) -> NDArray[Any]:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float32)


def _crop_png(path, size: int) -> bytes:  # type: ignore[no-untyped-def]
    rgb = Image.open(path).convert("RGB")
    buf = io.BytesIO()
    rgb.crop((0, 0, size, size)).save(buf, format="PNG")
    return buf.getvalue()


def test_upscales_a_real_image_like_onnxruntime_in_process(
    client: TestClient, gateway_settings: Settings
) -> None:
    response = _post(client, BABY, model=FAST)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-gantry-model"] == FAST
    assert response.headers["x-gantry-scale"] == "4"
    got = _rgb(response.content)
    assert got.shape == (512, 512, 3)

    session = ort.InferenceSession(
        str(gateway_settings.model_repository / FAST / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    x = (np.asarray(Image.open(BABY).convert("RGB"), np.float32) / 255).transpose(2, 0, 1)
    padded = np.pad(x, ((0, 0), (10, 10), (10, 10)), mode="reflect")  # the card's pre_pad
    (ref,) = session.run(None, {"image": padded[None]})
    expected = np.clip(np.rint(ref[0, :, 40:-40, 40:-40].transpose(1, 2, 0) * 255), 0, 255)
    assert np.abs(got - expected).mean() < 0.01  # one 256 px window covers it: same maths


@pytest.mark.parametrize(
    ("model", "size", "tile"), [(FAST, 128, 64), ("realesrgan-x4plus-anime", 128, 96)]
)
def test_tiled_output_matches_whole_image_output(
    client: TestClient, model: str, size: int, tile: int
) -> None:
    data = _crop_png(BABY, size)
    whole = _post(client, data, model=model, tile="0")
    tiled = _post(client, data, model=model, tile=str(tile))
    assert whole.status_code == tiled.status_code == 200, tiled.text
    assert int(tiled.headers["x-gantry-tiles"]) > 1
    diff = np.abs(_rgb(whole.content) - _rgb(tiled.content))
    assert diff.mean() < 0.5  # less than half a grey level on average
    # No seam: the worst column/row of differences is no worse than a few levels.
    assert diff.mean(axis=(0, 2)).max() < 3 and diff.mean(axis=(1, 2)).max() < 3


def test_default_model_is_realesrgan_x4plus(client: TestClient) -> None:
    response = _post(client, _crop_png(BABY, 40))
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == "realesrgan-x4plus"
    assert _rgb(response.content).shape == (160, 160, 3)


def test_grayscale_stays_grayscale(client: TestClient) -> None:
    response = _post(client, REAL_INPUTS / "wolf_gray.jpg", model=FAST)
    assert response.status_code == 200
    out = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.shape == (236 * 4, 236 * 4)


def test_16_bit_alpha_comes_back_16_bit_with_alpha(client: TestClient) -> None:
    response = _post(client, REAL_INPUTS / "tree_alpha_16bit.png", model=FAST)
    assert response.status_code == 200
    out = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.shape == (256 * 4, 342 * 4, 4) and out.dtype == np.uint16
    src = cv2.imread(str(REAL_INPUTS / "tree_alpha_16bit.png"), cv2.IMREAD_UNCHANGED)
    # Fully transparent areas stay transparent after upscaling.
    small = cv2.resize(out[:, :, 3], (342, 256), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(float) - src[:, :, 3]).mean() < 0.02 * 65535


@pytest.mark.parametrize(
    ("fmt", "mime", "mode"), [("jpeg", "image/jpeg", "RGB"), ("webp", "image/webp", "RGBA")]
)
def test_output_formats(client: TestClient, fmt: str, mime: str, mode: str) -> None:
    response = _post(client, REAL_INPUTS / "children-alpha.png", model=FAST, format=fmt)
    assert response.status_code == 200
    assert response.headers["content-type"] == mime
    assert Image.open(io.BytesIO(response.content)).mode == mode


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


@pytest.mark.parametrize(
    ("fields", "data", "expected"),
    [
        ({}, b"plain text, not an image", (415, "unsupported_media_type")),
        ({"model": "no-such-model"}, None, (422, "unknown_model")),
        ({"tile": "7"}, None, (422, "invalid_tile")),
        ({"format": "gif"}, None, (422, "invalid_request")),
        ({"model": FAST}, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, (422, "invalid_image")),
    ],
)
def test_bad_requests_get_the_contract_error_body(
    client: TestClient, fields: dict[str, str], data: bytes | None, expected: tuple[int, str]
) -> None:
    assert _error(_post(client, data or BABY.read_bytes(), **fields)) == expected


def test_missing_image_field(client: TestClient) -> None:
    assert _error(client.post("/v1/superres", data={"model": FAST})) == (422, "invalid_request")


@pytest.mark.usefixtures("triton")
def test_limits_give_413(gateway_settings: Settings) -> None:
    tight = gateway_settings.model_copy(
        update={"max_upload_bytes": 100_000, "max_input_pixels": 100 * 100}
    )
    with TestClient(create_app(tight)) as client:
        big = (SET5 / "HR" / "baby.png").read_bytes()
        assert _error(_post(client, big)) == (413, "upload_too_large")
        assert _error(_post(client, _crop_png(BABY, 120), model=FAST)) == (413, "image_too_large")


@pytest.mark.usefixtures("triton")
def test_over_the_compute_budget_points_to_the_batch_job(gateway_settings: Settings) -> None:
    tight = gateway_settings.model_copy(update={"sync_budget_s": 0.5, "serving_gflops": 10.0})
    with TestClient(create_app(tight)) as client:
        response = _post(client, BABY)  # x4plus, ~590 GFLOP
        assert _error(response) == (413, "compute_budget_exceeded")
        message = response.json()["error"]["message"]
        assert "/v1/jobs" in message and "superres_batch" in message
        # A cheap model on the same image fits the budget.
        assert _post(client, _crop_png(BABY, 32), model=FAST).status_code == 200
