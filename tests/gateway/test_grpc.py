"""gRPC gantry.v1.FaceVerification on the real Triton: the same answers as REST /v1/faces/*.

The `client` fixture runs the app's lifespan, which starts the gRPC server on
`gateway_settings.grpc_port`; these tests talk to it with the sync grpc API.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from PIL import Image

from gantry.core.settings import Settings
from gateway.grpc.protos import ensure_generated
from tests.paths import DATA

ensure_generated()

from gantry.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402  (generated just above)

KNN = DATA / "faces_verify" / "face_recognition_knn"
OBAMA = KNN / "obama" / "obama.jpg"
OBAMA2 = KNN / "obama" / "obama2.jpg"
BIDEN = KNN / "biden" / "biden.jpg"
BIDEN2 = KNN / "biden" / "biden2.jpg"
NO_FACE = DATA / "superres" / "Set5" / "HR" / "butterfly.png"  # RetinaFace finds none at 0.5
GROUP = DATA / "faces_detect" / "dlib_voc" / "2008_001322.jpg"  # 3 labelled faces

SERVICE = "gantry.v1.FaceVerification"
EMBEDDER = "dlib-resnet-v1"
TIMEOUT_S = 60.0


def read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture()
def channel(client: TestClient, gateway_settings: Settings) -> Iterator[grpc.Channel]:
    """A channel to the gRPC server of the running app."""
    with grpc.insecure_channel(f"127.0.0.1:{gateway_settings.grpc_port}") as chan:
        grpc.channel_ready_future(chan).result(timeout=TIMEOUT_S)
        yield chan


@pytest.fixture()
def stub(channel: grpc.Channel) -> Any:
    return faces_pb2_grpc.FaceVerificationStub(channel)


def norm(values: Any) -> float:
    return math.sqrt(sum(float(v) ** 2 for v in values))


def check_face(face: Any, width: int, height: int) -> None:
    assert len(face.box) == 4
    x1, y1, x2, y2 = face.box
    assert -1.0 <= x1 < x2 <= width + 1.0 and -1.0 <= y1 < y2 <= height + 1.0
    assert 0.0 < face.score <= 1.0
    assert len(face.landmarks) == 5
    for point in face.landmarks:
        assert -0.5 * width <= point.x <= 1.5 * width and -0.5 * height <= point.y <= 1.5 * height


def rest_verify(client: TestClient, a: Path, b: Path) -> dict[str, Any]:
    response = client.post(
        "/v1/faces/verify", files={"image_a": (a.name, read(a)), "image_b": (b.name, read(b))}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_detect_group_photo_with_both_detectors(stub: Any, client: TestClient) -> None:
    with Image.open(GROUP) as image:
        width, height = image.size
    data = read(GROUP)
    result = stub.Detect(faces_pb2.DetectRequest(image=data), timeout=TIMEOUT_S)
    assert (result.width, result.height) == (width, height)
    assert len(result.faces) >= 3
    for face in result.faces:
        check_face(face, width, height)
        assert not face.embedding and face.model == ""
    scores = [f.score for f in result.faces]
    assert scores == sorted(scores, reverse=True)

    # REST gives the same faces (its numbers are rounded to 2 / 5 decimals).
    rest = client.post("/v1/faces/detect", files={"image": (GROUP.name, data)}).json()
    assert (rest["width"], rest["height"]) == (width, height)
    assert len(rest["faces"]) == len(result.faces)
    for body, face in zip(rest["faces"], result.faces, strict=True):
        assert body["box"] == pytest.approx(list(face.box), abs=0.01)
        assert body["score"] == pytest.approx(face.score, abs=1e-5)

    mtcnn = stub.Detect(faces_pb2.DetectRequest(image=data, detector="mtcnn"), timeout=TIMEOUT_S)
    assert (mtcnn.width, mtcnn.height) == (width, height)
    assert len(mtcnn.faces) >= 3
    for face in mtcnn.faces:
        check_face(face, width, height)

    # min_score is honoured: between the two lowest scores, it drops exactly the weakest face.
    low, second = scores[-1], scores[-2]
    assert low < second
    cut = stub.Detect(
        faces_pb2.DetectRequest(image=data, min_score=(low + second) / 2), timeout=TIMEOUT_S
    )
    assert [f.score for f in cut.faces] == pytest.approx(scores[:-1], abs=1e-6)


def test_detect_finds_no_face_in_the_faceless_photo(stub: Any) -> None:
    result = stub.Detect(faces_pb2.DetectRequest(image=read(NO_FACE)), timeout=TIMEOUT_S)
    assert result.width > 0 and result.height > 0
    assert list(result.faces) == []


def test_detect_rejects_an_unknown_detector(stub: Any) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stub.Detect(faces_pb2.DetectRequest(image=read(OBAMA), detector="haar"), timeout=TIMEOUT_S)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata())["gantry-error-code"] == "unknown_detector"


def test_embed_gives_unit_128d_embeddings(stub: Any) -> None:
    result = stub.Embed(faces_pb2.EmbedRequest(image=read(OBAMA)), timeout=TIMEOUT_S)
    assert result.model == EMBEDDER
    assert len(result.faces) >= 1
    for face in result.faces:
        check_face(face, result.width, result.height)
        assert face.model == EMBEDDER
        assert len(face.embedding) == 128
        assert norm(face.embedding) == pytest.approx(1.0, abs=1e-4)


def test_verify_same_person_scores_higher_and_matches_rest(stub: Any, client: TestClient) -> None:
    obama, obama2, biden = read(OBAMA), read(OBAMA2), read(BIDEN)
    same = stub.Verify(
        faces_pb2.VerifyRequest(image_a=obama, image_b=obama2, id="same"), timeout=TIMEOUT_S
    )
    other = stub.Verify(faces_pb2.VerifyRequest(image_a=obama, image_b=biden), timeout=TIMEOUT_S)
    assert same.id == "same" and other.id == ""
    assert not same.HasField("error") and not other.HasField("error")
    assert same.model == other.model == EMBEDDER
    assert -1.0 <= other.similarity < same.similarity <= 1.0
    assert same.threshold == other.threshold  # the card's calibrated threshold
    assert same.match == (same.similarity >= same.threshold)
    assert other.match == (other.similarity >= other.threshold)
    assert same.match and not other.match
    for face in (same.face_a, same.face_b):
        assert len(face.embedding) == 128 and face.model == EMBEDDER
        assert norm(face.embedding) == pytest.approx(1.0, abs=1e-4)
    # The similarity is the cosine of the two embeddings sent back.
    dot = sum(a * b for a, b in zip(same.face_a.embedding, same.face_b.embedding, strict=True))
    assert dot == pytest.approx(same.similarity, abs=1e-5)

    # An explicit threshold is echoed and decides `match`.
    given = same.similarity + 0.01
    strict = stub.Verify(
        faces_pb2.VerifyRequest(image_a=obama, image_b=obama2, threshold=given), timeout=TIMEOUT_S
    )
    assert strict.threshold == pytest.approx(given, abs=1e-6)
    assert strict.similarity == pytest.approx(same.similarity, abs=1e-6)
    assert not strict.match

    rest = rest_verify(client, OBAMA, OBAMA2)
    assert rest["similarity"] == pytest.approx(same.similarity, abs=1e-5)
    assert rest["threshold"] == pytest.approx(same.threshold, abs=1e-6)
    assert rest["match"] is same.match and rest["model"] == same.model
    assert rest["face_a"]["box"] == pytest.approx(list(same.face_a.box), abs=0.01)


def test_the_arcface_mobilefacenet_answers_over_grpc_as_over_rest(
    stub: Any, client: TestClient
) -> None:
    arcface = "mobilefacenet-arcface"
    obama, obama2, biden = read(OBAMA), read(OBAMA2), read(BIDEN)
    same = stub.Verify(
        faces_pb2.VerifyRequest(image_a=obama, image_b=obama2, model=arcface), timeout=TIMEOUT_S
    )
    other = stub.Verify(
        faces_pb2.VerifyRequest(image_a=obama, image_b=biden, model=arcface), timeout=TIMEOUT_S
    )
    assert same.model == other.model == arcface
    assert same.match and not other.match
    assert len(same.face_a.embedding) == 192
    rest = client.post(
        "/v1/faces/verify",
        files={"image_a": ("a", obama), "image_b": ("b", obama2)},
        data={"model": arcface},
    ).json()
    assert rest["similarity"] == pytest.approx(same.similarity, abs=1e-5)
    assert rest["threshold"] == pytest.approx(same.threshold, abs=1e-6)
    embedded = stub.Embed(faces_pb2.EmbedRequest(image=obama, model=arcface), timeout=TIMEOUT_S)
    assert embedded.model == arcface and len(embedded.faces[0].embedding) == 192


def test_verify_without_a_face_is_invalid_argument(stub: Any, client: TestClient) -> None:
    request = faces_pb2.VerifyRequest(image_a=read(OBAMA), image_b=read(NO_FACE))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Verify(request, timeout=TIMEOUT_S)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata())["gantry-error-code"] == "no_face"
    assert "image_b" in error.details()

    # REST says the same.
    rest = client.post(
        "/v1/faces/verify",
        files={"image_a": ("a.jpg", read(OBAMA)), "image_b": ("b.png", read(NO_FACE))},
    )
    assert rest.status_code == 422
    assert rest.json()["error"]["code"] == "no_face"


def test_verify_stream_answers_in_order_and_survives_a_bad_pair(stub: Any) -> None:
    obama, obama2, biden, biden2 = read(OBAMA), read(OBAMA2), read(BIDEN), read(BIDEN2)
    pairs = [(obama, obama2), (obama, biden), (obama, read(NO_FACE)), (biden, biden2)]
    requests = [
        faces_pb2.VerifyRequest(image_a=a, image_b=b, id=f"p{i}") for i, (a, b) in enumerate(pairs)
    ]
    responses = list(stub.VerifyStream(iter(requests), timeout=TIMEOUT_S))
    assert [r.id for r in responses] == ["p0", "p1", "p2", "p3"]

    bad = responses[2]
    assert bad.HasField("error")
    assert bad.error.code == "no_face" and "image_b" in bad.error.message
    assert not bad.HasField("face_a") and bad.similarity == 0.0

    good = [responses[i] for i in (0, 1, 3)]
    for response in good:
        assert not response.HasField("error")
        assert response.model == EMBEDDER
        assert -1.0 <= response.similarity <= 1.0
        assert len(response.face_a.embedding) == len(response.face_b.embedding) == 128
    p0, p1, p3 = good
    assert p0.match and p3.match and not p1.match
    assert p0.similarity > p1.similarity and p3.similarity > p1.similarity

    # A streamed answer is the unary answer.
    unary = stub.Verify(requests[0], timeout=TIMEOUT_S)
    assert unary.similarity == pytest.approx(p0.similarity, abs=1e-6)


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {SERVICE, "grpc.health.v1.Health"} <= services
    # The descriptors come over the wire: a client needs nothing but the server.
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName(SERVICE)
    methods = {m.name: m for m in service.methods}
    assert set(methods) == {"Detect", "Embed", "Verify", "VerifyStream", "Landmarks", "Frontalize"}
    stream = methods["VerifyStream"]
    assert stream.client_streaming and stream.server_streaming
    assert stream.input_type.full_name == "gantry.v1.VerifyRequest"


def test_health_reports_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        response = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT_S)
        assert response.status == health_pb2.HealthCheckResponse.SERVING, name
    with pytest.raises(grpc.RpcError) as raised:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT_S)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_calls_take_a_version_and_name_the_one_that_answered(stub: Any) -> None:
    embedded = stub.Embed(faces_pb2.EmbedRequest(image=read(OBAMA), version=1), timeout=TIMEOUT_S)
    assert embedded.model == EMBEDDER and embedded.model_version == 1
    detected = stub.Detect(faces_pb2.DetectRequest(image=read(OBAMA)), timeout=TIMEOUT_S)
    assert [(m.name, m.version) for m in detected.models] == [("retinaface-mnet025", 1)]
    cascade = stub.Detect(
        faces_pb2.DetectRequest(image=read(OBAMA), detector="mtcnn"), timeout=TIMEOUT_S
    )
    assert [m.name for m in cascade.models] == ["mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"]
    verified = stub.Verify(
        faces_pb2.VerifyRequest(image_a=read(OBAMA), image_b=read(OBAMA2), version=1),
        timeout=TIMEOUT_S,
    )
    assert verified.match and verified.model_version == 1
    with pytest.raises(grpc.RpcError) as raised:
        stub.Embed(faces_pb2.EmbedRequest(image=read(OBAMA), version=99), timeout=TIMEOUT_S)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert dict(error.trailing_metadata())["gantry-error-code"] == "unknown_version"


@pytest.mark.parametrize("threshold", [-5.0, float("nan"), 5.0])
def test_verify_refuses_thresholds_rest_refuses(
    stub: Any, client: TestClient, threshold: float
) -> None:
    request = faces_pb2.VerifyRequest(image_a=read(OBAMA), image_b=read(BIDEN), threshold=threshold)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Verify(request, timeout=TIMEOUT_S)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata())["gantry-error-code"] == "invalid_threshold"
    files = {"image_a": ("a.jpg", read(OBAMA)), "image_b": ("b.jpg", read(BIDEN))}
    rest = client.post("/v1/faces/verify", files=files, data={"threshold": str(threshold)})
    assert rest.status_code == 422


def test_an_undecodable_message_is_invalid_argument(channel: grpc.Channel) -> None:
    raw = channel.unary_unary(
        f"/{SERVICE}/Detect", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    with pytest.raises(grpc.RpcError) as raised:
        raw(b"\xff\xff\xff\xff\x0f", timeout=TIMEOUT_S)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata())["gantry-error-code"] == "invalid_message"


def test_an_oversized_pair_fails_alone_in_a_stream(stub: Any, gateway_settings: Settings) -> None:
    big = read(OBAMA) + b"\0" * (gateway_settings.max_upload_bytes + 1)  # over the image limit
    assert len(big) < gateway_settings.grpc_max_message_bytes  # but a message gRPC accepts
    pairs = [
        faces_pb2.VerifyRequest(image_a=big, image_b=read(OBAMA2), id="big"),
        faces_pb2.VerifyRequest(image_a=read(OBAMA), image_b=read(OBAMA2), id="ok"),
    ]
    answers = list(stub.VerifyStream(iter(pairs), timeout=TIMEOUT_S))
    assert [a.id for a in answers] == ["big", "ok"]
    assert answers[0].error.code == "upload_too_large"
    assert not answers[1].error.code and answers[1].match


def test_landmarks_answer_as_rest_does(stub: Any, client: TestClient) -> None:
    data = read(GROUP)
    result = stub.Landmarks(faces_pb2.LandmarksRequest(image=data), timeout=TIMEOUT_S)
    assert (result.model, result.model_version, result.scheme) == (
        "faceapi-landmark68",
        1,
        "ibug68",
    )
    assert [(d.name, d.version) for d in result.detectors] == [("retinaface-mnet025", 1)]
    rest = client.post("/v1/faces/landmarks", files={"image": (GROUP.name, data)}).json()
    assert len(result.faces) == len(rest["faces"]) >= 3
    for face, rest_face in zip(result.faces, rest["faces"], strict=True):
        assert len(face.landmarks) == 68
        ours = [c for p in face.landmarks for c in (p.x, p.y)]
        assert ours == pytest.approx([c for p in rest_face["landmarks"] for c in p], abs=0.01)
    missing = faces_pb2.LandmarksRequest(image=data, model="dlib-resnet-v1")
    with pytest.raises(grpc.RpcError) as error:
        stub.Landmarks(missing, timeout=TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_verify_aligns_by_a_landmark_model_as_rest_does(stub: Any, client: TestClient) -> None:
    request = faces_pb2.VerifyRequest(
        image_a=read(OBAMA), image_b=read(OBAMA2), align="faceapi-landmark68"
    )
    result = stub.Verify(request, timeout=TIMEOUT_S)
    rest = client.post(
        "/v1/faces/verify",
        files={"image_a": (OBAMA.name, read(OBAMA)), "image_b": (OBAMA2.name, read(OBAMA2))},
        data={"align": "faceapi-landmark68"},
    ).json()
    assert result.match and result.similarity == pytest.approx(rest["similarity"], abs=1e-5)
    assert result.similarity != pytest.approx(rest_verify(client, OBAMA, OBAMA2)["similarity"])


def test_frontalize_answers_as_rest_does(stub: Any, client: TestClient) -> None:
    data = read(GROUP)
    result = stub.Frontalize(faces_pb2.FrontalizeRequest(image=data), timeout=TIMEOUT_S)
    assert (result.model, result.model_version) == ("tpgan-cmu", 1)
    assert (result.landmark_model.name, result.landmark_model.version) == (
        "faceapi-landmark68",
        1,
    )
    rest = client.post("/v1/faces/frontalize", files={"image": (GROUP.name, data)}).json()
    assert len(result.faces) == len(rest["faces"]) >= 3
    for face, rest_face in zip(result.faces, rest["faces"], strict=True):
        assert list(face.box) == pytest.approx(rest_face["box"], abs=0.01)
        # The same PNG bytes: REST carries them as base64.
        assert base64.b64encode(face.image).decode() == rest_face["image"]
    unknown = faces_pb2.FrontalizeRequest(image=data, model="faceapi-landmark68")
    with pytest.raises(grpc.RpcError) as error:
        stub.Frontalize(unknown, timeout=TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_embed_and_verify_frontalize_as_rest_does(stub: Any, client: TestClient) -> None:
    data = read(OBAMA)
    embedded = stub.Embed(faces_pb2.EmbedRequest(image=data, frontalize=True), timeout=TIMEOUT_S)
    rest = client.post(
        "/v1/faces/embed", files={"image": ("a.jpg", data)}, data={"frontalize": "true"}
    ).json()
    assert list(embedded.faces[0].embedding) == pytest.approx(
        rest["faces"][0]["embedding"], abs=1e-4
    )
    request = faces_pb2.VerifyRequest(image_a=read(OBAMA), image_b=read(OBAMA2), frontalize=True)
    verified = stub.Verify(request, timeout=TIMEOUT_S)
    rest_verify = client.post(
        "/v1/faces/verify",
        files={"image_a": ("a.jpg", read(OBAMA)), "image_b": ("b.jpg", read(OBAMA2))},
        data={"frontalize": "true"},
    ).json()
    assert verified.similarity == pytest.approx(rest_verify["similarity"], abs=1e-4)
