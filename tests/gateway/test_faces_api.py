"""POST /v1/faces/{detect,embed,verify,landmarks} through the gateway and the real Triton."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.paths import DATA
from trainer.catalog.faces import MOBILEFACENET_ARCFACE_THRESHOLD

VOC = DATA / "faces_detect" / "dlib_voc"
KNN = DATA / "faces_verify" / "face_recognition_knn"
GROUP = "2008_001322.jpg"
NO_FACE = DATA / "superres" / "Set5" / "HR" / "butterfly.png"


def _labels(image: str) -> np.ndarray:  # type: ignore[type-arg]
    with (VOC / "boxes.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"] == image]
    return np.asarray(
        [
            [
                float(r["x"]),
                float(r["y"]),
                float(r["x"]) + float(r["w"]),
                float(r["y"]) + float(r["h"]),
            ]
            for r in rows
        ]
    )


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # type: ignore[type-arg]
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _post(client: TestClient, path: str, files: dict[str, bytes], **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, files={k: (k, v) for k, v in files.items()}, data=data)


@pytest.mark.parametrize("detector", ["retinaface", "mtcnn"])
def test_detect_finds_every_labelled_face(client: TestClient, detector: str) -> None:
    response = _post(
        client, "/v1/faces/detect", {"image": (VOC / GROUP).read_bytes()}, detector=detector
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (500, 375)
    boxes = np.asarray([f["box"] for f in body["faces"]])
    assert _iou(_labels(GROUP), boxes).max(axis=1).min() >= 0.3
    for face in body["faces"]:
        assert 0.5 <= face["score"] <= 1.0 and len(face["landmarks"]) == 5
        (lx, _), (rx, _), (nx, ny), (mlx, mly), (mrx, _) = face["landmarks"]
        x1, y1, x2, y2 = face["box"]
        assert x1 <= nx <= x2 and y1 <= ny <= y2
        assert lx < rx and mlx < mrx and ny < mly  # as seen in the image: left is left


def test_large_photos_are_detected_in_input_coordinates(client: TestClient) -> None:
    small = Image.open(VOC / GROUP).convert("RGB")
    big = small.resize((small.width * 3, small.height * 3), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    response = _post(client, "/v1/faces/detect", {"image": buf.getvalue()})
    body = response.json()
    assert (body["width"], body["height"]) == (1500, 1125)
    boxes = np.asarray([f["box"] for f in body["faces"]]) / 3
    assert _iou(_labels(GROUP), boxes).max(axis=1).min() >= 0.3


def test_min_score_filters(client: TestClient) -> None:
    data = {"image": (VOC / GROUP).read_bytes()}
    loose = _post(client, "/v1/faces/detect", data, min_score="0.3").json()["faces"]
    strict = _post(client, "/v1/faces/detect", data, min_score="0.999").json()["faces"]
    assert len(strict) < len(loose) and all(f["score"] >= 0.999 for f in strict)


def test_embed_returns_unit_embeddings(client: TestClient) -> None:
    response = _post(client, "/v1/faces/embed", {"image": (VOC / GROUP).read_bytes()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "dlib-resnet-v1" and len(body["faces"]) >= 3
    for face in body["faces"]:
        vector = np.asarray(face["embedding"])
        assert vector.shape == (128,) and abs(np.linalg.norm(vector) - 1) < 1e-4
        assert face["model"] == "dlib-resnet-v1"


def test_verify_same_and_different_people(client: TestClient) -> None:
    obama, obama2 = (
        (KNN / "obama" / "obama.jpg").read_bytes(),
        (KNN / "obama" / "obama2.jpg").read_bytes(),
    )
    biden = (KNN / "biden" / "biden.jpg").read_bytes()
    same = _post(client, "/v1/faces/verify", {"image_a": obama, "image_b": obama2}).json()
    other = _post(client, "/v1/faces/verify", {"image_a": obama, "image_b": biden}).json()
    assert same["match"] is True and other["match"] is False
    assert same["similarity"] > other["similarity"]
    assert same["threshold"] == other["threshold"] and same["model"] == "dlib-resnet-v1"
    assert len(same["face_a"]["embedding"]) == 128
    forced = _post(
        client, "/v1/faces/verify", {"image_a": obama, "image_b": biden}, threshold="-1"
    ).json()
    assert forced["match"] is True and forced["threshold"] == -1


def _error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def test_verify_without_a_face_is_422_no_face(client: TestClient) -> None:
    obama = (KNN / "obama" / "obama.jpg").read_bytes()
    response = _post(
        client, "/v1/faces/verify", {"image_a": obama, "image_b": NO_FACE.read_bytes()}
    )
    assert _error(response) == (422, "no_face")
    assert "image_b" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "fields", "expected"),
    [
        ("/v1/faces/detect", {"detector": "haar"}, (422, "unknown_detector")),
        ("/v1/faces/detect", {"min_score": "1.5"}, (422, "invalid_request")),
        ("/v1/faces/embed", {"model": "arcface-r999"}, (422, "unknown_model")),
        ("/v1/faces/landmarks", {"model": "dlib-resnet-v1"}, (422, "unknown_model")),
        ("/v1/faces/landmarks", {"detector": "haar"}, (422, "unknown_detector")),
        ("/v1/faces/landmarks", {"version": "9"}, (404, "unknown_version")),
    ],
)
def test_bad_face_requests(
    client: TestClient, path: str, fields: dict[str, str], expected: tuple[int, str]
) -> None:
    response = _post(client, path, {"image": (KNN / "obama" / "obama.jpg").read_bytes()}, **fields)
    assert _error(response) == expected


def test_not_an_image_is_415(client: TestClient) -> None:
    assert _error(_post(client, "/v1/faces/detect", {"image": b"GIF? no, text"})) == (
        415,
        "unsupported_media_type",
    )


def test_face_models_are_listed_and_ready(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["retinaface-mnet025"]["task"] == "face_detection"
    assert models["dlib-resnet-v1"]["task"] == "face_embedding"
    assert {"mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"} <= set(models)
    assert all(m["ready"] for m in models.values())
    ready = client.get("/readyz").json()["models"]
    assert {"retinaface-mnet025", "dlib-resnet-v1", "realesrgan-x4plus"} <= set(ready)


def test_faces_answer_with_the_model_version(client: TestClient) -> None:
    obama = (KNN / "obama" / "obama.jpg").read_bytes()
    embedded = _post(client, "/v1/faces/embed", {"image": obama}, version="1")
    assert embedded.headers["x-gantry-model"] == "dlib-resnet-v1"
    assert embedded.headers["x-gantry-model-version"] == "1"
    assert embedded.json()["version"] == 1
    detected = _post(client, "/v1/faces/detect", {"image": obama})
    assert detected.headers["x-gantry-model"] == "retinaface-mnet025"
    assert detected.json()["models"] == [{"name": "retinaface-mnet025", "version": 1}]
    assert _error(
        _post(client, "/v1/faces/verify", {"image_a": obama, "image_b": obama}, version="9")
    ) == (
        404,
        "unknown_version",
    )


# --- the ArcFace MobileFaceNet (research only, never the default) ------------------------------

ARCFACE = "mobilefacenet-arcface"
ARCFACE_THRESHOLD = MOBILEFACENET_ARCFACE_THRESHOLD


def test_embed_with_the_arcface_mobilefacenet(client: TestClient) -> None:
    response = _post(
        client, "/v1/faces/embed", {"image": (VOC / GROUP).read_bytes()}, model=ARCFACE
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == ARCFACE
    body = response.json()
    assert body["model"] == ARCFACE and len(body["faces"]) >= 3
    vectors = np.asarray([face["embedding"] for face in body["faces"]])
    assert vectors.shape[1] == 192
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert all(face["model"] == ARCFACE for face in body["faces"])
    # Different people in one photo: no two of them at the match threshold.
    sims = vectors @ vectors.T
    assert sims[~np.eye(len(vectors), dtype=bool)].max() < ARCFACE_THRESHOLD


def test_verify_with_the_arcface_mobilefacenet(client: TestClient) -> None:
    obama, obama2 = (
        (KNN / "obama" / "obama.jpg").read_bytes(),
        (KNN / "obama" / "obama2.jpg").read_bytes(),
    )
    biden = (KNN / "biden" / "biden.jpg").read_bytes()
    same = _post(
        client, "/v1/faces/verify", {"image_a": obama, "image_b": obama2}, model=ARCFACE
    ).json()
    other = _post(
        client, "/v1/faces/verify", {"image_a": obama, "image_b": biden}, model=ARCFACE
    ).json()
    assert same["model"] == other["model"] == ARCFACE
    assert same["match"] is True and other["match"] is False
    # The card's calibrated threshold, with a wide margin on both sides (bench/faces_calibrate,
    # faces_verify: same person 0.69-0.82, different people at most 0.18).
    assert same["threshold"] == other["threshold"] == ARCFACE_THRESHOLD
    assert same["similarity"] > 0.6 and other["similarity"] < 0.3
    assert len(same["face_a"]["embedding"]) == 192


def test_arcface_mobilefacenet_is_listed_as_research_only(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    arcface = models[ARCFACE]
    assert arcface["task"] == "face_embedding" and arcface["ready"]
    assert arcface["research_only"] and not arcface["default"]
    assert "no licence file" in arcface["license"] and "MS1M" in arcface["license"]
    assert "ArcFace loss" in arcface["description"]
    assert arcface["architecture"] == "mobilefacenet_tf"
    # Without `model`, the CC0 dlib descriptor answers.
    response = _post(
        client, "/v1/faces/embed", {"image": (KNN / "obama" / "obama.jpg").read_bytes()}
    )
    assert response.json()["model"] == "dlib-resnet-v1"


# --- 68-point landmarks ----------------------------------------------------------------------

LANDMARKS = DATA / "landmarks"
LANDMARK_MODEL = "faceapi-landmark68"


def _truth(image: str) -> np.ndarray:  # type: ignore[type-arg]
    """The 68 labelled points of the 300-W image."""
    entries = json.loads((LANDMARKS / "landmarks.json").read_text())
    return np.asarray(next(e for e in entries if e["image"] == image)["points_xy"])


@pytest.mark.parametrize("image", ["mmpose_300w/indoor_020.png", "mmpose_300w/indoor_029.png"])
def test_landmarks_land_on_the_labelled_300w_faces(client: TestClient, image: str) -> None:
    response = _post(client, "/v1/faces/landmarks", {"image": (LANDMARKS / image).read_bytes()})
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == LANDMARK_MODEL
    assert response.headers["x-gantry-model-version"] == "1"
    body = response.json()
    assert (body["model"], body["version"], body["scheme"]) == (LANDMARK_MODEL, 1, "ibug68")
    assert body["models"] == [{"name": "retinaface-mnet025", "version": 1}]
    truth = _truth(image)
    face = max(body["faces"], key=lambda f: f["box"][2] - f["box"][0])
    points = np.asarray(face["landmarks"])
    assert points.shape == (68, 2)
    # Normalised by the outer-eye-corner distance (iBUG 36, 45); bench/landmarks.py.
    nme = np.linalg.norm(points - truth, axis=1).mean() / np.linalg.norm(truth[36] - truth[45])
    assert nme < 0.1


def test_every_face_of_a_group_photo_gets_68_points_in_its_box(client: TestClient) -> None:
    image = (VOC / GROUP).read_bytes()
    detected = _post(client, "/v1/faces/detect", {"image": image}).json()
    located = _post(client, "/v1/faces/landmarks", {"image": image}).json()
    assert [f["box"] for f in located["faces"]] == [f["box"] for f in detected["faces"]]
    for face in located["faces"]:
        points = np.asarray(face["landmarks"])
        assert points.shape == (68, 2)
        x1, y1, x2, y2 = face["box"]
        margin = 0.25 * max(x2 - x1, y2 - y1)
        assert (points[:, 0] > x1 - margin).all() and (points[:, 0] < x2 + margin).all()
        assert (points[:, 1] > y1 - margin).all() and (points[:, 1] < y2 + margin).all()
        # iBUG order as seen in the image: jaw 0 left of 16, outer eye corners 36 left of 45,
        # nose tip 30 above the mouth's top 51, which is above the chin 8.
        assert points[0, 0] < points[16, 0] and points[36, 0] < points[45, 0]
        assert points[30, 1] < points[51, 1] < points[8, 1]


def test_landmarks_of_a_faceless_photo_are_no_faces(client: TestClient) -> None:
    response = _post(client, "/v1/faces/landmarks", {"image": NO_FACE.read_bytes()})
    assert response.status_code == 200 and response.json()["faces"] == []


def test_the_landmark_model_is_listed_mit_and_default(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    card = models[LANDMARK_MODEL]
    assert card["task"] == "face_landmarks" and card["ready"] and card["default"]
    assert not card["research_only"] and card["license"].startswith("MIT")
    assert LANDMARK_MODEL in client.get("/readyz").json()["models"]


@pytest.mark.parametrize("align", [LANDMARK_MODEL, "pfld-300w"])
def test_embed_and_verify_align_by_a_landmark_models_points(client: TestClient, align: str) -> None:
    obama, obama2 = (
        (KNN / "obama" / "obama.jpg").read_bytes(),
        (KNN / "obama" / "obama2.jpg").read_bytes(),
    )
    plain = _post(client, "/v1/faces/embed", {"image": obama}).json()["faces"][0]
    aligned = _post(client, "/v1/faces/embed", {"image": obama}, align=align)
    assert aligned.status_code == 200, aligned.text
    face = aligned.json()["faces"][0]
    # Same face, same detector: the box and the reported five points are the detector's;
    # only the chip the embedding was computed from moved.
    assert face["box"] == plain["box"] and face["landmarks"] == plain["landmarks"]
    cosine = float(np.dot(face["embedding"], plain["embedding"]))
    assert cosine < 1.0 - 1e-6
    if align == LANDMARK_MODEL:
        # face-api's points land where RetinaFace's do, give or take a few pixels.
        assert cosine > 0.9
        biden = (KNN / "biden" / "biden.jpg").read_bytes()
        same = _post(client, "/v1/faces/verify", {"image_a": obama, "image_b": obama2}, align=align)
        other = _post(client, "/v1/faces/verify", {"image_a": obama, "image_b": biden}, align=align)
        assert same.json()["match"] is True and other.json()["match"] is False


@pytest.mark.parametrize(
    ("align", "expected"),
    [("dlib-resnet-v1", (422, "unknown_model")), ("haar", (422, "unknown_model"))],
)
def test_align_takes_a_landmark_model_only(
    client: TestClient, align: str, expected: tuple[int, str]
) -> None:
    obama = (KNN / "obama" / "obama.jpg").read_bytes()
    assert _error(_post(client, "/v1/faces/embed", {"image": obama}, align=align)) == expected
    response = _post(client, "/v1/faces/verify", {"image_a": obama, "image_b": obama}, align=align)
    assert _error(response) == expected


def test_the_openapi_document_types_landmarks_and_alignment(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {LANDMARK_MODEL, "pfld-300w"} <= set(schemas["FaceLandmarksModel"]["enum"])
    assert schemas["Alignment"]["enum"][0] == "detector"
    assert {LANDMARK_MODEL, "pfld-300w"} <= set(schemas["Alignment"]["enum"])
    for body in ("Body_embed", "Body_verify"):
        align = schemas[body]["properties"]["align"]
        assert align["$ref"] == "#/components/schemas/Alignment"
    landmarks = schemas["Body_landmarks"]["properties"]
    assert landmarks["model"]["$ref"] == "#/components/schemas/FaceLandmarksModel"
    assert landmarks["detector"]["$ref"] == "#/components/schemas/Detector"
    assert {"scheme", "models"} <= set(schemas["Landmarks"]["properties"])


# --- frontalization --------------------------------------------------------------------------

CMU = DATA / "train" / "cmu_faces_pose"
FRONTALIZERS = ("capg-gan-cmu", "tpgan-cmu")


def _cmu_photo(relative: str, scale: int = 4) -> bytes:
    """A CMU pose face (64x60 grey) upscaled ``scale`` times, as a PNG: at its own size the
    face is about 20 px wide, under RetinaFace's smallest anchors."""
    grey = Image.open(CMU / relative).convert("L")
    big = grey.resize((grey.width * scale, grey.height * scale), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    return buf.getvalue()


def _chip(encoded: str) -> np.ndarray:  # type: ignore[type-arg]
    import base64

    with Image.open(io.BytesIO(base64.b64decode(encoded))) as im:
        assert im.format == "PNG" and im.mode == "L"
        return np.asarray(im)


@pytest.mark.parametrize("model", FRONTALIZERS)
def test_frontalize_answers_a_square_grey_frontal_view_per_face(
    client: TestClient, model: str
) -> None:
    image = _cmu_photo("dave/dave_left_neutral_eyes.png")  # a held-aside person's half-profile
    response = _post(client, "/v1/faces/frontalize", {"image": image}, model=model)
    assert response.status_code == 200, response.text
    assert response.headers["x-gantry-model"] == model
    body = response.json()
    assert (body["model"], body["version"], body["detector"]) == (model, 1, "retinaface")
    assert body["landmark_model"] == {"name": "faceapi-landmark68", "version": 1}
    assert (body["width"], body["height"]) == (256, 240)
    (face,) = body["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 240 and face["score"] >= 0.5
    chip = _chip(face["image"])
    assert chip.shape == (64, 64)
    assert chip.std() > 5  # a face, not a flat square


def test_frontalize_gives_one_view_per_face_of_a_group(client: TestClient) -> None:
    image = (VOC / GROUP).read_bytes()
    detected = _post(client, "/v1/faces/detect", {"image": image}).json()
    body = _post(client, "/v1/faces/frontalize", {"image": image}).json()
    assert [f["box"] for f in body["faces"]] == [f["box"] for f in detected["faces"]]
    assert all(_chip(f["image"]).shape == (64, 64) for f in body["faces"])
    faceless = _post(client, "/v1/faces/frontalize", {"image": NO_FACE.read_bytes()})
    assert faceless.status_code == 200 and faceless.json()["faces"] == []


@pytest.mark.parametrize(
    ("path", "fields", "expected"),
    [
        ("/v1/faces/frontalize", {"model": "faceapi-landmark68"}, (422, "unknown_model")),
        ("/v1/faces/frontalize", {"detector": "haar"}, (422, "unknown_detector")),
        ("/v1/faces/frontalize", {"version": "9"}, (404, "unknown_version")),
        (
            "/v1/faces/embed",
            {"frontalize": "true", "align": "faceapi-landmark68"},
            (422, "invalid_alignment"),
        ),
        ("/v1/faces/embed", {"frontalize": "maybe"}, (422, "invalid_request")),
    ],
)
def test_frontalize_options_are_checked(
    client: TestClient, path: str, fields: dict[str, str], expected: tuple[int, str]
) -> None:
    image = _cmu_photo("henry/henry_right_happy_sunglasses.png")
    response = _post(client, path, {"image": image}, **fields)
    assert (response.status_code, response.json()["error"]["code"]) == expected, response.text


def test_embed_with_frontalize_embeds_the_frontal_view(client: TestClient) -> None:
    image = _cmu_photo("dave/dave_right_sad_eyes.png")
    plain = _post(client, "/v1/faces/embed", {"image": image}).json()
    frontal = _post(client, "/v1/faces/embed", {"image": image}, frontalize="true").json()
    (a,), (b,) = plain["faces"], frontal["faces"]
    assert a["box"] == b["box"] and a["landmarks"] == b["landmarks"]
    va, vb = np.asarray(a["embedding"]), np.asarray(b["embedding"])
    assert np.linalg.norm(vb) == pytest.approx(1.0, abs=1e-4)
    assert float(va @ vb) < 0.999  # another picture of the face went in


def test_verify_with_frontalize_compares_frontal_views(client: TestClient) -> None:
    files = {
        "image_a": _cmu_photo("dave/dave_left_neutral_eyes.png"),
        "image_b": _cmu_photo("dave/dave_forward_neutral_eyes.png"),
    }
    plain = _post(client, "/v1/faces/verify", files).json()
    frontal = _post(client, "/v1/faces/verify", files, frontalize="true").json()
    assert -1 <= frontal["similarity"] <= 1 and frontal["similarity"] != plain["similarity"]
    assert frontal["threshold"] == plain["threshold"] and frontal["model"] == plain["model"]


def test_frontalizers_are_listed_research_only(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    for name in FRONTALIZERS:
        card = models[name]
        assert card["task"] == "face_frontalization" and card["ready"]
        assert card["research_only"] and "research only" in card["license"]
