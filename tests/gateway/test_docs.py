"""The OpenAPI document and the docs pages, as a newcomer offline gets them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gantry import __version__


def test_docs_are_served_from_the_package_not_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert (
            "cdn.jsdelivr" not in html
            and "unpkg.com" not in html
            and "fonts.googleapis" not in html
        )
        assert "/docs/static/" in html
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/static/redoc.standalone.js").status_code == 200


def test_document_types_what_the_platform_serves(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == __version__
    schemas = spec["components"]["schemas"]
    superres_models = set(schemas["SuperresModel"]["enum"])
    assert {"realesrgan-x4plus", "realesr-animevideov3-x2"} <= superres_models
    assert "dlib-resnet-v1" in schemas["FaceEmbeddingModel"]["enum"]
    assert {"cyclegan-vintagify", "pix2pix-facades"} <= set(schemas["ImageToImageModel"]["enum"])
    assert not {"realesrgan-x4plus"} & set(schemas["ImageToImageModel"]["enum"])
    translate_body = schemas["Body_translate"]["properties"]
    assert translate_body["model"]["$ref"] == "#/components/schemas/ImageToImageModel"
    assert translate_body["image"]["format"] == translate_body["reference"]["format"] == "binary"
    assert {"version", "domain", "seed", "format"} <= set(translate_body)
    assert schemas["Body_translate"]["required"] == ["image"]
    assert "stargan-celeba" in schemas["FaceEditModel"]["enum"]
    edit_body = schemas["Body_edit"]["properties"]
    assert edit_body["model"]["$ref"] == "#/components/schemas/FaceEditModel"
    assert edit_body["image"]["format"] == edit_body["donor"]["format"] == "binary"
    assert {"version", "attributes", "format"} <= set(edit_body)
    assert schemas["Detector"]["enum"] == ["mtcnn", "retinaface"]
    assert set(schemas["JobRequest"]["discriminator"]["mapping"]) == {
        "superres_batch",
        "synthesis",
        "train",
    }
    assert schemas["Body_superres"]["properties"]["image"]["format"] == "binary"
    assert "HTTPValidationError" not in schemas
    paths = spec["paths"]
    for path in ("/v1/superres", "/v1/translate", "/v1/edit"):
        responses = paths[path]["post"]["responses"]
        for status in ("404", "413", "415", "422", "502", "503"):
            ref = responses[status]["content"]["application/json"]
            assert ref["schema"]["$ref"] == "#/components/schemas/ErrorBody"
        assert {"image/png", "image/jpeg", "image/webp"} <= set(responses["200"]["content"])
        assert {"X-Gantry-Model", "X-Gantry-Model-Version"} <= set(responses["200"]["headers"])
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobRequest"
    }
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
