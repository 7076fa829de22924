"""POST /v1/inpaint through the gateway and the real Triton, on a real photo with a hole.

The photo is one the inpainting model never trained on (held aside by name). The answer is
the input, bit for bit, outside the hole; inside it, what ONNX Runtime computes here from the
model file of the test repository on the *whole* photo (padded as the card says): the
gateway runs only the hole's box and its context, and that must not change the fill.
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

from gantry.core.settings import Settings
from gateway.app import create_app
from gateway.frontdoor import MULTIPART_SLACK, route_policy
from tests.paths import DATA
from trainer.data.blur import is_held_aside

GLCIC = "glcic-photos"
PHOTO = "bsd68_color/108070.png"  # 481 x 321, held aside from training
MULTIPLE = 4


def _photo() -> NDArray[np.uint8]:
    assert is_held_aside(PHOTO)
    return np.asarray(Image.open(DATA / "train" / "natural_photos_sr" / PHOTO).convert("RGB"))


RGB = _photo()
HEIGHT, WIDTH = RGB.shape[:2]


def _hole() -> NDArray[np.bool_]:
    """A 40 x 32 box and a stroke below it: the kind of holes the model trained on."""
    hole = np.zeros((HEIGHT, WIDTH), bool)
    hole[150:182, 200:240] = True
    hole[210:218, 180:260] = True
    return hole


HOLE = _hole()


def _png(pixels: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _mask_png(hole: NDArray[np.bool_]) -> bytes:
    return _png(hole.astype(np.uint8) * 255)


def _pixels(body: bytes) -> NDArray[Any]:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float64)


def _post(  # type: ignore[no-untyped-def]
    client: TestClient, image: bytes, mask: bytes | None, path: str = "/v1/inpaint", **fields: str
):
    """A request naming the inpainting model unless ``fields`` name another (``model=""``:
    none; there is no default, the only inpainting model being research only)."""
    fields = {"model": GLCIC, **fields}
    if not fields["model"]:
        del fields["model"]
    files = {"image": ("in.png", image)}
    if mask is not None:
        files["mask"] = ("mask.png", mask)
    return client.post(path, files=files, data=fields)


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def _onnxruntime(settings: Settings, rgb: NDArray[Any], hole: NDArray[np.bool_]) -> NDArray[Any]:
    """The model file run here on the whole photo: RGB in [0, 1] and the mask, mirrored at
    the bottom and right to the next multiple of 4; the output cropped, rounded to 8 bits."""
    session = ort.InferenceSession(
        str(settings.model_repository / GLCIC / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    x = np.concatenate([rgb.transpose(2, 0, 1) / 255.0, hole[None].astype(np.float64)])
    pad = ((0, 0), (0, -HEIGHT % MULTIPLE), (0, -WIDTH % MULTIPLE))
    x = np.pad(x, pad, mode="reflect").astype(np.float32)
    (y,) = session.run(None, {"image_and_mask": x[None]})
    out = y[0, :, :HEIGHT, :WIDTH].transpose(1, 2, 0)
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255)


def _hole_psnr(filled: NDArray[Any], truth: NDArray[Any], hole: NDArray[np.bool_]) -> float:
    mse = float(((filled.astype(np.float64) - truth) ** 2)[hole].mean())
    return 10 * float(np.log10(255.0**2 / mse))


def test_fills_only_the_hole_with_what_the_model_computes_on_the_whole_photo(
    client: TestClient, gateway_settings: Settings
) -> None:
    assert (HEIGHT % MULTIPLE, WIDTH % MULTIPLE) != (0, 0)  # the gateway pads the region
    response = _post(client, _png(RGB), _mask_png(HOLE))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-gantry-model"] == GLCIC
    assert response.headers["x-gantry-model-version"] == "1"
    assert response.headers["x-gantry-tiles"] == "1"  # the hole's region fits one window
    got = _pixels(response.content)
    assert got.shape == (HEIGHT, WIDTH, 3)
    assert np.array_equal(got[~HOLE], RGB[~HOLE])  # bit for bit outside the hole
    expected = _onnxruntime(gateway_settings, RGB, HOLE)
    assert np.abs(got[HOLE] - expected[HOLE]).max() <= 1.0
    assert np.abs(got[HOLE] - RGB[HOLE]).mean() > 1.0  # the hole was filled, not kept

    # In windows of 384 px sharing 160 px of context: the same fill, up to rounding.
    tiled = _post(client, _png(RGB), _mask_png(HOLE), tile="384", version="1")
    assert tiled.status_code == 200, tiled.text
    assert int(tiled.headers["x-gantry-tiles"]) > 1
    tiled_pixels = _pixels(tiled.content)
    assert np.array_equal(tiled_pixels[~HOLE], RGB[~HOLE])
    assert np.abs(tiled_pixels[HOLE] - got[HOLE]).max() <= 2.0
    again = _post(client, _png(RGB), _mask_png(HOLE))
    assert again.content == response.content  # deterministic (BN running statistics)


def test_the_fill_against_the_mean_fill_on_a_held_aside_photo(client: TestClient) -> None:
    """What version 1 (250 build steps) honestly gives: a fill of its own, not yet better
    than the image's mean colour on this photo (measured 10.3 to 13.0 dB against 14.53 in
    the hole, depending on the build's run; the 1200-step run of bench/train ties the mean
    fill on the held-aside crops), closer to the truth than a black or a white hole."""
    response = _post(client, _png(RGB), _mask_png(HOLE))
    assert response.status_code == 200, response.text
    got = _pixels(response.content)
    served = _hole_psnr(got, RGB, HOLE)
    mean_fill = np.where(HOLE[:, :, None], RGB[~HOLE].mean(axis=0), RGB)
    baseline = _hole_psnr(mean_fill, RGB, HOLE)
    black = _hole_psnr(np.where(HOLE[:, :, None], 0.0, RGB), RGB, HOLE)
    white = _hole_psnr(np.where(HOLE[:, :, None], 255.0, RGB), RGB, HOLE)
    assert max(black, white) < served < baseline + 10
    assert got[HOLE].std(axis=0).min() > 1.0  # not a flat colour: it follows the context


def test_the_inpaint_model_is_listed_as_research_only_with_its_own_task(
    client: TestClient,
) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models[GLCIC]["task"] == "inpaint"
    assert models[GLCIC]["research_only"] and "BSD68" in models[GLCIC]["license"]


SMALL = RGB[:64, :64]
SMALL_HOLE = np.zeros((64, 64), bool)
SMALL_HOLE[20:40, 24:44] = True


def _jpeg(pixels: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (_mask_png(SMALL_HOLE[:, :60]), (422, "mask_size_mismatch")),
        (_png(np.where(SMALL_HOLE, 200, 0).astype(np.uint8)), (422, "invalid_mask")),
        (_jpeg(SMALL_HOLE.astype(np.uint8) * 255), (422, "invalid_mask")),  # greyed edges
        (_mask_png(np.zeros((64, 64), bool)), (422, "empty_mask")),
        (b"plain text", (415, "unsupported_media_type")),
    ],
)
def test_a_mismatched_non_binary_or_empty_mask_is_refused(
    client: TestClient, mask: bytes, expected: tuple[int, str]
) -> None:
    assert _error(_post(client, _png(SMALL), mask)) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"version": "9"}, (404, "unknown_version")),
        ({"model": "no-such-model"}, (422, "unknown_model")),
        ({"model": "deblurgan-photos"}, (422, "unknown_model")),  # a deblurring model
        ({"model": ""}, (422, "missing_model")),  # no default: research-only models only
        ({"tile": "7"}, (422, "invalid_tile")),
        ({"seed": "3"}, (422, "invalid_request")),  # no such field on inpaint
        ({"format": "gif"}, (422, "invalid_request")),
    ],
)
def test_bad_requests_get_the_contract_error_body(
    client: TestClient, fields: dict[str, str], expected: tuple[int, str]
) -> None:
    assert _error(_post(client, _png(SMALL), _mask_png(SMALL_HOLE), **fields)) == expected


def test_the_mask_is_required_and_other_endpoints_refuse_the_inpaint_model(
    client: TestClient,
) -> None:
    assert _error(_post(client, _png(SMALL), None)) == (422, "invalid_request")
    for path in ("/v1/deblur", "/v1/translate", "/v1/superres"):
        response = client.post(
            path, files={"image": ("in.png", _png(SMALL))}, data={"model": GLCIC}
        )
        assert _error(response) == (422, "unknown_model"), path


def test_a_grey_photo_stays_grey_and_keeps_its_pixels(client: TestClient) -> None:
    grey = np.asarray(Image.fromarray(SMALL).convert("L"))
    response = _post(client, _png(grey), _mask_png(SMALL_HOLE), format="png")
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as out:
        assert out.mode == "L"
        pixels = np.asarray(out)
    assert np.array_equal(pixels[~SMALL_HOLE], grey[~SMALL_HOLE])


@pytest.mark.usefixtures("triton")
def test_over_the_compute_budget_is_a_413_without_a_batch_job(gateway_settings: Settings) -> None:
    tight = gateway_settings.model_copy(update={"sync_budget_s": 0.01, "serving_gflops": 1.0})
    with TestClient(create_app(tight)) as client:
        response = _post(client, _png(RGB), _mask_png(HOLE))
        assert _error(response) == (413, "compute_budget_exceeded")
        message = response.json()["error"]["message"]
        assert GLCIC in message and "no batch job takes masks" in message


@pytest.mark.usefixtures("triton")
def test_a_configured_default_serves_requests_without_a_model(gateway_settings: Settings) -> None:
    settings = gateway_settings.model_copy(update={"default_inpaint_model": GLCIC})
    with TestClient(create_app(settings)) as client:
        response = _post(client, _png(SMALL), _mask_png(SMALL_HOLE), model="")
        assert response.status_code == 200, response.text
        assert response.headers["x-gantry-model"] == GLCIC


def test_inpaint_has_the_translate_scope_and_room_for_two_files() -> None:
    settings = Settings()
    policy = route_policy("POST", "/v1/inpaint", settings)
    assert (policy.scope, policy.family) == ("translate", "translate")
    assert policy.body_limit == 2 * settings.max_upload_bytes + MULTIPART_SLACK


def test_the_openapi_document_offers_the_inpaint_models(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    body = schemas["Body_inpaint"]["properties"]
    assert body["model"]["$ref"] == "#/components/schemas/InpaintModel"
    assert schemas["InpaintModel"]["enum"] == [GLCIC]
    assert body["mask"]["format"] == "binary" and body["image"]["format"] == "binary"
    assert {"version", "tile", "format"} <= set(body)
    assert sorted(schemas["Body_inpaint"]["required"]) == ["image", "mask"]
