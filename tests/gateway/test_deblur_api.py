"""POST /v1/deblur through the gateway and the real Triton, on a real photo blurred by camera
shake.

The photo is one the deblurring model never trained on (held aside by name), blurred here by
a kernel of the training pairs' kind; the served answer is closer to the sharp photo than the
blurred input is (PSNR and SSIM on luma, as bench/ computes them). The served image is
checked against ONNX Runtime run here on the model file of the test repository, on the input
padded as the card says (mirrored at the bottom and right up to its size multiple): what
answers is the model.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from bench.metrics import psnr_y, ssim_y
from gantry.core.settings import Settings
from gateway.app import create_app
from gateway.frontdoor import MULTIPART_SLACK, route_policy
from tests.paths import DATA
from trainer.data.blur import blur_valid, is_held_aside, kernel_geometry, random_kernel

DEBLURGAN = "deblurgan-photos"
PHOTO = "bsd68_color/108070.png"  # 481 x 321, held aside from training
MULTIPLE = 4


def _blurred_photo() -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The held-aside photo blurred by a seeded camera-shake kernel (valid part, 8 bits), and
    the sharp pixels each blurred pixel is centred on."""
    assert is_held_aside(PHOTO)
    sharp = np.asarray(Image.open(DATA / "train" / "natural_photos_sr" / PHOTO).convert("RGB"))
    kernel = random_kernel(np.random.default_rng(2), kernel_geometry(64))
    blurred = np.clip(np.floor(blur_valid(sharp, kernel) + 0.5), 0, 255).astype(np.uint8)
    c = (kernel.shape[0] - 1) // 2
    return blurred, sharp[c : c + blurred.shape[0], c : c + blurred.shape[1]]


BLURRED, SHARP = _blurred_photo()


def _png(rgb: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(body: bytes) -> NDArray[Any]:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float32)


def _post(client: TestClient, data: bytes, path: str = "/v1/deblur", **fields: str):  # type: ignore[no-untyped-def]
    """A request naming the deblurring model unless ``fields`` name another (or ``model=""``
    to send none: there is no default, the only deblurring model being research only)."""
    fields = {"model": DEBLURGAN, **fields}
    if not fields["model"]:
        del fields["model"]
    return client.post(path, files={"image": ("in.png", data)}, data=fields)


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def _onnxruntime(settings: Settings, rgb: NDArray[Any]) -> NDArray[Any]:
    """The model file run here on the whole image: [-1, 1] input mirrored at the bottom and
    right to the next multiple of 4, output cropped and rounded to 8 bits as the encoder does."""
    session = ort.InferenceSession(
        str(settings.model_repository / DEBLURGAN / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    height, width = rgb.shape[:2]
    x = (rgb / 255.0 * 2.0 - 1.0).transpose(2, 0, 1).astype(np.float32)
    x = np.pad(x, ((0, 0), (0, -height % MULTIPLE), (0, -width % MULTIPLE)), mode="reflect")
    (y,) = session.run(None, {"image": x[None]})
    out = (y[0, :, :height, :width].transpose(1, 2, 0) + 1.0) / 2.0
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255)


def test_deblurs_a_blurred_photo_at_its_own_size(
    client: TestClient, gateway_settings: Settings
) -> None:
    height, width = BLURRED.shape[:2]
    assert (height % MULTIPLE, width % MULTIPLE) != (0, 0)  # the gateway pads it
    whole = _post(client, _png(BLURRED), tile="0")
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["x-gantry-model"] == DEBLURGAN
    assert whole.headers["x-gantry-model-version"] == "1"
    assert whole.headers["x-gantry-tiles"] == "1"
    got = _pixels(whole.content)
    assert got.shape == (height, width, 3)
    assert np.abs(got - _onnxruntime(gateway_settings, BLURRED)).max() <= 1.0
    assert np.abs(got - BLURRED).mean() > 1.0  # the residual is not zero: G changed it
    # Closer to the sharp photo than the blurred input is (version 1, a short run: +0.35 dB).
    deblurred = got.astype(np.uint8)
    assert psnr_y(deblurred, SHARP, 0) > psnr_y(BLURRED, SHARP, 0) + 0.1
    assert ssim_y(deblurred, SHARP, 0) > ssim_y(BLURRED, SHARP, 0)

    # By default the card's 256 px windows, cross-faded: close to the one-window answer.
    tiled = _post(client, _png(BLURRED), model=DEBLURGAN, version="1")
    assert tiled.status_code == 200, tiled.text
    assert int(tiled.headers["x-gantry-tiles"]) == 6  # 2 x 3 windows over 303 x 463
    diff = np.abs(_pixels(tiled.content) - got)
    assert diff.mean() < 1.5 and diff.mean(axis=(0, 2)).max() < 4
    again = _post(client, _png(BLURRED), model=DEBLURGAN, version="1")
    assert again.content == tiled.content  # deterministic (dropout off when served)


def test_the_deblur_model_is_listed_as_research_only_with_its_own_task(
    client: TestClient,
) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models[DEBLURGAN]["task"] == "deblur"
    assert models[DEBLURGAN]["research_only"] and "BSD68" in models[DEBLURGAN]["license"]


def test_deblur_and_translate_never_run_each_others_models(client: TestClient) -> None:
    small = _png(BLURRED[:32, :32])
    assert _error(_post(client, small, model="cyclegan-vintagify")) == (422, "unknown_model")
    assert _error(_post(client, small, "/v1/translate", model=DEBLURGAN)) == (
        422,
        "unknown_model",
    )
    assert _error(_post(client, small, "/v1/superres", model=DEBLURGAN)) == (
        422,
        "unknown_model",
    )


SMALL = _png(BLURRED[:32, :32])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"version": "9"}, (404, "unknown_version")),
        ({"model": "no-such-model"}, (422, "unknown_model")),
        ({"model": "realesrgan-x4plus"}, (422, "unknown_model")),  # a superres model
        ({"tile": "7"}, (422, "invalid_tile")),  # not a multiple of 4
        ({"tile": "2048"}, (422, "invalid_tile")),
        ({"seed": "3"}, (422, "invalid_request")),  # no such field on deblur
        ({"format": "gif"}, (422, "invalid_request")),
    ],
)
def test_bad_requests_get_the_contract_error_body(
    client: TestClient, fields: dict[str, str], expected: tuple[int, str]
) -> None:
    assert _error(_post(client, SMALL, **fields)) == expected


def test_not_an_image(client: TestClient) -> None:
    assert _error(_post(client, b"plain text")) == (415, "unsupported_media_type")


@pytest.mark.usefixtures("triton")
def test_over_the_compute_budget_points_to_the_batch_job(gateway_settings: Settings) -> None:
    tight = gateway_settings.model_copy(update={"sync_budget_s": 0.01, "serving_gflops": 1.0})
    with TestClient(create_app(tight)) as client:
        response = _post(client, _png(BLURRED))
        assert _error(response) == (413, "compute_budget_exceeded")
        message = response.json()["error"]["message"]
        assert "/v1/jobs" in message and "superres_batch" in message and DEBLURGAN in message


def test_without_a_configured_default_the_model_is_required(client: TestClient) -> None:
    assert _error(_post(client, SMALL, model="")) == (422, "missing_model")


@pytest.mark.usefixtures("triton")
def test_a_configured_default_serves_requests_without_a_model(gateway_settings: Settings) -> None:
    settings = gateway_settings.model_copy(update={"default_deblur_model": DEBLURGAN})
    with TestClient(create_app(settings)) as client:
        response = _post(client, SMALL, model="")
        assert response.status_code == 200, response.text
        assert response.headers["x-gantry-model"] == DEBLURGAN


def test_deblur_has_the_translate_scope_and_admission_family() -> None:
    settings = Settings()
    policy = route_policy("POST", "/v1/deblur", settings)
    assert (policy.scope, policy.family) == ("translate", "translate")
    assert policy.body_limit == settings.max_upload_bytes + MULTIPART_SLACK


def test_the_openapi_document_offers_the_deblur_models(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    body = schemas["Body_deblur"]["properties"]
    assert body["model"]["$ref"] == "#/components/schemas/DeblurModel"
    assert schemas["DeblurModel"]["enum"] == [DEBLURGAN]
    assert {"image", "version", "tile", "format"} <= set(body)
    assert schemas["Body_deblur"]["required"] == ["image"]
