"""POST /v1/edit through the gateway and the real Triton, on real CelebA faces.

The served face is checked against ONNX Runtime run here on the model file of the test
repository, fed the face cut as the card says and the edit vector the request means: what
answers is the model, with the edit the request asked for.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from gantry.core.settings import Settings
from gateway.frontdoor import MULTIPART_SLACK, route_policy
from tests.images import aligned_face
from tests.paths import DATA

STARGAN = "stargan-celeba"
ICGAN = "icgan-celeba"
GENEGAN = "genegan-celeba"
FACES = DATA / "train" / "celeba_attr_subset" / "images"
FACE = FACES / "000005.jpg"  # 89 x 109, as CelebA's aligned faces
OTHER = FACES / "000018.jpg"  # blond: a donor of the attribute


def _pixels(body: bytes) -> NDArray[Any]:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), np.float32)


def _post(client: TestClient, files: dict[str, bytes] | None = None, **fields: str):  # type: ignore[no-untyped-def]
    uploads = {"image": ("face.jpg", FACE.read_bytes())}
    uploads |= {k: (f"{k}.jpg", v) for k, v in (files or {}).items()}
    return client.post("/v1/edit", files=uploads, data={"model": STARGAN, **fields})


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def _onnxruntime(settings: Settings, model: str, second: NDArray[Any]) -> NDArray[Any]:
    """The model file run here on FACE and the edit input, rounded as the encoder does."""
    session = ort.InferenceSession(
        str(settings.model_repository / model / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    first, edit = (i.name for i in session.get_inputs())
    (y,) = session.run(None, {first: aligned_face(FACE)[None], edit: second[None]})
    out = (y[0].transpose(1, 2, 0) + 1.0) / 2.0
    return np.clip(np.floor(out * 255.0 + 0.5), 0, 255)


def _edit(settings: Settings, values: list[float]) -> NDArray[Any]:
    return _onnxruntime(settings, STARGAN, np.asarray(values, np.float32))


def test_edits_a_real_face_as_asked(client: TestClient, gateway_settings: Settings) -> None:
    response = _post(client, attributes=json.dumps({"Blond_Hair": True}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-gantry-model"] == STARGAN
    assert response.headers["x-gantry-model-version"] == "1"
    got = _pixels(response.content)
    assert got.shape == (64, 64, 3)
    # Blond set, the other hair colours cleared, sex and age kept as D reads them.
    expected = _edit(gateway_settings, [0, 1, 0, -1, -1])
    assert np.abs(got - expected).max() <= 1.0
    older = _post(client, attributes=json.dumps({"Young": False}))
    assert older.status_code == 200, older.text
    assert (
        np.abs(_pixels(older.content) - _edit(gateway_settings, [-1, -1, -1, -1, 0])).max() <= 1.0
    )
    # Two edits, two faces: the edit reached the network.
    assert np.abs(_pixels(older.content) - got).mean() > 0.5


def test_icgan_edits_through_the_same_endpoint(
    client: TestClient, gateway_settings: Settings
) -> None:
    model = ICGAN
    response = _post(client, model=model, attributes=json.dumps({"Male": True}))
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == model
    expected = _onnxruntime(gateway_settings, model, np.asarray([-1, -1, -1, 1, -1], np.float32))
    assert np.abs(_pixels(response.content) - expected).max() <= 1.0


def test_a_donor_model_gives_the_face_the_donors_attribute(
    client: TestClient, gateway_settings: Settings
) -> None:
    response = _post(client, {"donor": OTHER.read_bytes()}, model=GENEGAN)
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == GENEGAN
    got = _pixels(response.content)
    assert got.shape == (64, 64, 3)
    assert np.abs(got - _onnxruntime(gateway_settings, GENEGAN, aligned_face(OTHER))).max() <= 1.0
    refused = _post(client, model=GENEGAN, attributes='{"Blond_Hair": true}')
    assert _error(refused) == (422, "invalid_edit")
    assert _error(_post(client, model=GENEGAN)) == (422, "invalid_edit")


def test_a_face_edit_model_is_listed_as_research_only(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    for name in (STARGAN, ICGAN, GENEGAN):
        assert models[name]["research_only"] and "CelebA" in models[name]["license"]


@pytest.mark.parametrize(
    ("fields", "files", "expected"),
    [
        ({}, {}, (422, "invalid_edit")),  # nothing to change
        ({"attributes": "{"}, {}, (422, "invalid_edit")),  # not JSON
        ({"attributes": '{"Male": 1}'}, {}, (422, "invalid_edit")),  # not a boolean
        ({"attributes": '["Male"]'}, {}, (422, "invalid_edit")),
        ({"attributes": "{}"}, {}, (422, "invalid_edit")),
        ({"attributes": '{"Purple_Hair": true}'}, {}, (422, "unknown_attribute")),
        ({"attributes": '{"Black_Hair": true, "Blond_Hair": true}'}, {}, (422, "invalid_edit")),
        ({}, {"donor": OTHER.read_bytes()}, (422, "invalid_edit")),  # StarGAN takes no donor
        ({"attributes": '{"Male": true}', "version": "9"}, {}, (404, "unknown_version")),
        (
            {"attributes": '{"Male": true}', "model": "cyclegan-vintagify"},
            {},
            (422, "unknown_model"),
        ),
        ({"attributes": '{"Male": true}', "seed": "3"}, {}, (422, "invalid_request")),
    ],
)
def test_bad_requests_get_the_contract_error_body(
    client: TestClient,
    fields: dict[str, str],
    files: dict[str, bytes],
    expected: tuple[int, str],
) -> None:
    assert _error(_post(client, files, **fields)) == expected


def test_not_an_image_and_no_model(client: TestClient) -> None:
    response = client.post(
        "/v1/edit",
        files={"image": ("face.txt", b"plain text")},
        data={"model": STARGAN, "attributes": '{"Male": true}'},
    )
    assert _error(response) == (415, "unsupported_media_type")
    # No default: every face-editing model is research only.
    response = client.post(
        "/v1/edit", files={"image": ("face.jpg", FACE.read_bytes())}, data={"attributes": "{}"}
    )
    assert _error(response) == (422, "missing_model")


def test_edit_has_the_translate_scope_and_room_for_a_donor() -> None:
    settings = Settings()
    policy = route_policy("POST", "/v1/edit", settings)
    assert (policy.scope, policy.family) == ("translate", "translate")
    assert policy.body_limit == 2 * settings.max_upload_bytes + MULTIPART_SLACK
