"""POST /v1/generate through the gateway and the real Triton: Progressive GAN faces from seeds.

The served image is checked against ONNX Runtime run here on the model file of the test
repository, fed the latents the seed draws (numpy PCG64 standard normals): what answers is
the model, and the seed alone fixes the image.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from gantry.core.latents import seeded_latents
from gantry.core.settings import Settings

PROGAN = "progan-celeba"
LATENT, SIDE = 128, 32


def _post(client: TestClient, **fields: str):  # type: ignore[no-untyped-def]
    """A request naming the generator unless ``fields`` name another (``model=""`` sends
    none: there is no default, the only generator being research only)."""
    fields = {"model": PROGAN, **fields}
    if not fields["model"]:
        del fields["model"]
    return client.post("/v1/generate", data=fields)


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def _pixels(body: bytes) -> NDArray[Any]:
    image = Image.open(io.BytesIO(body))
    assert image.mode == "RGB"
    return np.asarray(image, np.float32)


def _onnxruntime(settings: Settings, seed: int, count: int = 1) -> NDArray[Any]:
    """The model file run here on the seed's latents, rounded to 8 bits as served."""
    session = ort.InferenceSession(
        str(settings.model_repository / PROGAN / "1" / "model.onnx"),
        providers=["CPUExecutionProvider"],
    )
    (images,) = session.run(None, {"z": seeded_latents(LATENT, seed, count)})
    unit = (images.transpose(0, 2, 3, 1) + 1.0) / 2.0
    return np.clip(np.floor(unit * 255.0 + 0.5), 0, 255)


def test_a_seed_gives_one_png_face_and_the_same_bytes_every_time(
    client: TestClient, gateway_settings: Settings
) -> None:
    response = _post(client, seed="7")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-gantry-model"] == PROGAN
    assert response.headers["x-gantry-model-version"] == "1"
    assert (response.headers["x-gantry-seed"], response.headers["x-gantry-count"]) == ("7", "1")
    face = _pixels(response.content)
    assert face.shape == (SIDE, SIDE, 3)
    assert np.abs(face - _onnxruntime(gateway_settings, 7)[0]).max() <= 1.0
    assert face.std() > 5  # a picture, not a flat colour
    again = _post(client, seed="7", version="1")
    assert again.content == response.content
    other = _post(client, seed="8")
    assert other.status_code == 200 and other.content != response.content
    assert np.abs(_pixels(other.content) - face).mean() > 1.0


def test_a_count_gives_a_zip_whose_first_face_is_the_seeds_own(
    client: TestClient, gateway_settings: Settings
) -> None:
    response = _post(client, seed="7", count="3")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["x-gantry-count"] == "3"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["seed-7-0.png", "seed-7-1.png", "seed-7-2.png"]
        faces = [_pixels(archive.read(name)) for name in archive.namelist()]
    expected = _onnxruntime(gateway_settings, 7, 3)
    for face, want in zip(faces, expected, strict=True):
        assert face.shape == (SIDE, SIDE, 3) and np.abs(face - want).max() <= 1.0
    alone = _pixels(_post(client, seed="7").content)
    assert np.abs(faces[0] - alone).max() <= 1.0
    assert np.abs(faces[1] - faces[0]).mean() > 1.0 and np.abs(faces[2] - faces[1]).mean() > 1.0
    assert _post(client, seed="7", count="3").content == response.content  # a reproducible zip


def test_the_largest_count_runs_in_batches_of_the_cards_size(
    client: TestClient, gateway_settings: Settings
) -> None:
    most = gateway_settings.max_generate_count
    response = _post(client, seed="11", count=str(most), format="webp")
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert names == [f"seed-11-{i}.webp" for i in range(most)]
        last = Image.open(io.BytesIO(archive.read(names[-1])))
        assert last.format == "WEBP" and last.size == (SIDE, SIDE)


def test_without_a_seed_one_is_drawn_and_reported(client: TestClient) -> None:
    response = _post(client)
    assert response.status_code == 200, response.text
    seed = response.headers["x-gantry-seed"]
    assert 0 <= int(seed) <= 2**53 - 1
    assert _post(client, seed=seed).content == response.content


def test_the_generator_is_listed_as_research_only_with_its_latent_and_size(
    client: TestClient,
) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    progan = models[PROGAN]
    assert progan["task"] == "generation" and progan["research_only"]
    assert "CelebA" in progan["license"]
    assert progan["spec"]["latent_dim"] == LATENT and progan["spec"]["resolution"] == SIDE
    assert [t["name"] for t in progan["inputs"]] == ["z"]


def test_the_openapi_document_lists_the_endpoint_and_its_models(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/generate"]["post"]
    content = operation["responses"]["200"]["content"]
    assert {"image/png", "application/zip"} <= set(content)
    assert "X-Gantry-Seed" in operation["responses"]["200"]["headers"]
    assert "422" in operation["responses"]
    schemas = document["components"]["schemas"]
    body = schemas["Body_generate"]
    assert body["properties"]["model"]["$ref"] == "#/components/schemas/GenerationModel"
    assert PROGAN in schemas["GenerationModel"]["enum"]
    assert {"version", "seed", "count", "format"} <= set(body["properties"])
    assert body["additionalProperties"] is False


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"count": "0"}, (422, "invalid_count")),
        ({"count": "17"}, (422, "invalid_count")),  # over GANTRY_MAX_GENERATE_COUNT (16)
        ({"count": "-2"}, (422, "invalid_count")),
        ({"count": "two"}, (422, "invalid_request")),
        ({"seed": "-1"}, (422, "invalid_seed")),
        ({"seed": str(2**53)}, (422, "invalid_seed")),  # beyond what every client holds exactly
        ({"seed": "1" * 19}, (422, "invalid_request")),  # beyond a form integer's 18 digits
        ({"seed": "1.5"}, (422, "invalid_request")),
        ({"seed": "abc"}, (422, "invalid_request")),
        ({"model": ""}, (422, "missing_model")),
        ({"model": "no-such-model"}, (422, "unknown_model")),
        ({"model": "realesrgan-x4plus"}, (422, "unknown_model")),  # a superres model
        ({"version": "9"}, (404, "unknown_version")),
        ({"version": "0"}, (422, "invalid_request")),
        ({"domain": "Blond_Hair"}, (422, "invalid_request")),  # no such field
        ({"format": "gif"}, (422, "invalid_request")),
    ],
)
def test_bad_requests_get_the_contract_error_body(
    client: TestClient, fields: dict[str, str], expected: tuple[int, str]
) -> None:
    response = _post(client, **fields)
    assert _error(response) == expected
    if expected[1] == "missing_model":
        assert PROGAN in response.json()["error"]["message"]
    if expected[1] == "invalid_count":
        assert "1 to 16" in response.json()["error"]["message"]


def test_a_multipart_request_works_as_a_url_encoded_one(client: TestClient) -> None:
    multipart = client.post("/v1/generate", files={"model": (None, PROGAN), "seed": (None, "7")})
    assert multipart.status_code == 200, multipart.text
    assert multipart.content == _post(client, seed="7").content
