"""POST /v1/translate through the gateway and the real Triton, on real images.

The served image is checked against ONNX Runtime run here on the model file of the test
repository, on the input padded as the card says (mirrored at the bottom and right up to
its size multiple): what answers is the model, at any input size.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from gantry.core.settings import Settings
from gantry.serving.translate import style_code
from gateway.app import create_app
from gateway.frontdoor import MULTIPART_SLACK, route_policy
from tests.images import aligned_face
from tests.paths import DATA, SET5

CYCLEGAN = "cyclegan-vintagify"
PIX2PIX = "pix2pix-facades"
BABY = SET5 / "HR" / "baby.png"  # 512 x 512
LABEL = DATA / "train" / "cmp_facades" / "val" / "label" / "cmp_b0023.png"  # palette, 256 x 256
MULTIPLE = {CYCLEGAN: 4, PIX2PIX: 64}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _rgb_png(path: Path, width: int | None = None, height: int | None = None) -> bytes:
    """The file as an RGB PNG (a palette label map decoded to its colours), cropped."""
    image = Image.open(path).convert("RGB")
    return _png(image.crop((0, 0, width or image.width, height or image.height)))


def _pixels(body: bytes) -> NDArray[Any]:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float32)


def _post(client: TestClient, data: bytes, **fields: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/translate", files={"image": ("in.png", data)}, data=fields)


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def _onnxruntime(settings: Settings, model: str, rgb: NDArray[Any]) -> NDArray[Any]:
    """The model file run here: [-1, 1] input mirrored at the bottom and right to the next
    multiple, output cropped to the input and rounded to 8 bits as the encoder rounds."""
    session = ort.InferenceSession(
        str(settings.model_repository / model / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    height, width = rgb.shape[:2]
    multiple = MULTIPLE[model]
    x = (rgb / 255.0 * 2.0 - 1.0).transpose(2, 0, 1).astype(np.float32)
    pad_h, pad_w = -height % multiple, -width % multiple
    x = np.pad(x, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
    (y,) = session.run(None, {"image": x[None]})
    out = (y[0, :, :height, :width].transpose(1, 2, 0) + 1.0) / 2.0
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255)


def test_translates_a_real_photo_at_its_own_size(client: TestClient) -> None:
    response = _post(client, BABY.read_bytes(), model=CYCLEGAN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-gantry-model"] == CYCLEGAN
    assert response.headers["x-gantry-model-version"] == "1"
    got = _pixels(response.content)
    assert got.shape == (512, 512, 3)
    # A vintage look, not the photo: the network changed it, but kept the picture.
    diff = np.abs(got - _pixels(BABY.read_bytes()))
    assert 4.0 < diff.mean() < 80.0


@pytest.mark.parametrize(
    ("model", "path", "width", "height"),
    [
        (CYCLEGAN, BABY, 250, 183),  # not multiples of 4
        (PIX2PIX, LABEL, 256, 256),  # multiples of 64: no padding
        (PIX2PIX, LABEL, 200, 150),  # not multiples of 64
    ],
)
def test_any_size_is_the_model_run_on_the_padded_image(
    client: TestClient,
    gateway_settings: Settings,
    model: str,
    path: Path,
    width: int,
    height: int,
) -> None:
    data = _rgb_png(path, width, height)
    first = _post(client, data, model=model)
    assert first.status_code == 200, first.text
    assert first.headers["x-gantry-model"] == model
    got = _pixels(first.content)
    assert got.shape == (height, width, 3)
    source = _pixels(data)
    expected = _onnxruntime(gateway_settings, model, source)
    assert np.abs(got - expected).max() <= 1.0  # within one 8-bit level everywhere
    assert np.abs(got - source).mean() > 4.0  # the network did something
    # Deterministic, and version 1 is the version answered by default.
    again = _post(client, data, model=model, version="1")
    assert again.status_code == 200 and again.headers["x-gantry-model-version"] == "1"
    assert again.content == first.content


def test_the_default_model_is_the_mit_licensed_cyclegan(client: TestClient) -> None:
    response = _post(client, _rgb_png(BABY, 64, 48))
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == CYCLEGAN
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models[CYCLEGAN]["license"].startswith("MIT") and not models[CYCLEGAN]["research_only"]


def test_jpeg_output(client: TestClient) -> None:
    response = _post(client, _rgb_png(BABY, 101, 77), model=CYCLEGAN, format="jpeg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and image.size == (101, 77)


SMALL = _rgb_png(BABY, 32, 32)


@pytest.mark.parametrize(
    ("fields", "files", "expected"),
    [
        ({"model": CYCLEGAN, "version": "9"}, {}, (404, "unknown_version")),
        ({"model": "no-such-model"}, {}, (422, "unknown_model")),
        ({"model": "realesrgan-x4plus"}, {}, (422, "unknown_model")),  # a superres model
        ({"model": CYCLEGAN, "domain": "winter"}, {}, (422, "not_multi_domain")),
        ({"model": PIX2PIX, "seed": "3"}, {}, (422, "not_multi_domain")),
        ({}, {"reference": SMALL}, (422, "not_multi_domain")),
        ({"seed": "3"}, {"reference": SMALL}, (422, "invalid_style")),
        ({"seed": "-1"}, {}, (422, "invalid_request")),
        ({"tile": "0"}, {}, (422, "invalid_request")),  # no such field on translate
        ({"format": "gif"}, {}, (422, "invalid_request")),
    ],
)
def test_bad_requests_get_the_contract_error_body(
    client: TestClient,
    fields: dict[str, str],
    files: dict[str, bytes],
    expected: tuple[int, str],
) -> None:
    uploads = {"image": ("in.png", SMALL), **{k: (f"{k}.png", v) for k, v in files.items()}}
    response = client.post("/v1/translate", files=uploads, data=fields)
    assert _error(response) == expected


def test_not_an_image(client: TestClient) -> None:
    assert _error(_post(client, b"plain text")) == (415, "unsupported_media_type")
    assert _error(client.post("/v1/translate", data={"model": CYCLEGAN})) == (
        422,
        "invalid_request",
    )


@pytest.mark.usefixtures("triton")
def test_over_the_compute_budget_points_to_the_batch_job(gateway_settings: Settings) -> None:
    tight = gateway_settings.model_copy(update={"sync_budget_s": 0.5, "serving_gflops": 10.0})
    with TestClient(create_app(tight)) as client:
        response = _post(client, BABY.read_bytes(), model=CYCLEGAN)  # ~380 GFLOP
        assert _error(response) == (413, "compute_budget_exceeded")
        message = response.json()["error"]["message"]
        assert "/v1/jobs" in message and "superres_batch" in message and CYCLEGAN in message


@pytest.mark.usefixtures("triton")
def test_without_a_configured_default_the_model_is_required(gateway_settings: Settings) -> None:
    settings = gateway_settings.model_copy(update={"default_translate_model": ""})
    with TestClient(create_app(settings)) as client:
        assert _error(_post(client, SMALL)) == (422, "missing_model")


def test_translate_has_its_scope_admission_family_and_room_for_a_reference() -> None:
    settings = Settings()
    policy = route_policy("POST", "/v1/translate", settings)
    assert (policy.scope, policy.family) == ("translate", "translate")
    assert policy.body_limit == 2 * settings.max_upload_bytes + MULTIPART_SLACK


def test_a_palette_label_map_is_read_as_its_colours(client: TestClient) -> None:
    palette = _post(client, LABEL.read_bytes(), model=PIX2PIX)  # as `curl -F image=@...` sends it
    rgb = _post(client, _rgb_png(LABEL), model=PIX2PIX)
    assert palette.status_code == rgb.status_code == 200, palette.text
    assert palette.content == rgb.content


# --- a multi-domain style model (StarGAN v2) ------------------------------------------------

STARGAN_V2 = "stargan-v2-celeba-hair"
FACES = DATA / "train" / "celeba_attr_subset" / "images"
FACE, REFERENCE = FACES / "000005.jpg", FACES / "000008.jpg"


def _styled(settings: Settings, domain: int, reference: Path | None, seed: int) -> NDArray[Any]:
    """The model file run here as the request means it, rounded as the encoder rounds."""
    session = ort.InferenceSession(
        str(settings.model_repository / STARGAN_V2 / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    face = aligned_face(FACE)
    feeds = {
        "image": face,
        "reference": aligned_face(reference) if reference is not None else np.zeros_like(face),
        "z": style_code(16, seed),
        "domain": np.eye(3, dtype=np.float32)[domain],
        "use_reference": np.full(1, 1.0 if reference is not None else 0.0, np.float32),
    }
    (y,) = session.run(None, {k: v[None] for k, v in feeds.items()})
    out = (y[0].transpose(1, 2, 0) + 1.0) / 2.0
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255)


def _translatealigned_face(client: TestClient, reference: bytes | None = None, **fields: str):  # type: ignore[no-untyped-def]
    files = {"image": ("face.jpg", FACE.read_bytes())}
    if reference is not None:
        files["reference"] = ("reference.jpg", reference)
    return client.post("/v1/translate", files=files, data={"model": STARGAN_V2, **fields})


def test_a_style_model_translates_a_face_to_a_domain_with_a_seed_or_a_reference(
    client: TestClient, gateway_settings: Settings
) -> None:
    seeded = _translatealigned_face(client, domain="Blond_Hair", seed="7")
    assert seeded.status_code == 200, seeded.text
    assert seeded.headers["x-gantry-model"] == STARGAN_V2
    got = _pixels(seeded.content)
    assert got.shape == (64, 64, 3)
    assert np.abs(got - _styled(gateway_settings, 1, None, 7)).max() <= 1.0
    # No seed and no reference: seed 0, so the answer is reproducible.
    default = _translatealigned_face(client, domain="Black_Hair")
    assert default.status_code == 200, default.text
    assert np.abs(_pixels(default.content) - _styled(gateway_settings, 0, None, 0)).max() <= 1.0
    referenced = _translatealigned_face(client, REFERENCE.read_bytes(), domain="Brown_Hair")
    assert referenced.status_code == 200, referenced.text
    expected = _styled(gateway_settings, 2, REFERENCE, 0)
    assert np.abs(_pixels(referenced.content) - expected).max() <= 1.0


@pytest.mark.parametrize(
    ("fields", "reference", "expected"),
    [
        ({}, None, (422, "invalid_domain")),
        ({"domain": "Red_Hair"}, None, (422, "invalid_domain")),
        ({"domain": "Blond_Hair", "seed": "1"}, SMALL, (422, "invalid_style")),
    ],
)
def test_a_style_model_refuses_what_it_cannot_take(
    client: TestClient,
    fields: dict[str, str],
    reference: bytes | None,
    expected: tuple[int, str],
) -> None:
    assert _error(_translatealigned_face(client, reference, **fields)) == expected
