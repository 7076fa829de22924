"""The gateway against careless and hostile clients: each test is a reproduction of a defect
found by attacking it, turned into the behaviour a user should get."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from gantry.core.settings import Settings
from gateway.app import create_app
from tests.conftest import free_port, live_gateway
from tests.paths import DATA, SET5

FAST = "realesr-animevideov3-x2"
KNN = DATA / "faces_verify" / "face_recognition_knn"
OBAMA = KNN / "obama" / "obama.jpg"
BIRD = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()


def _png(image: Image.Image, fmt: str = "PNG", **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def _error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return response.status_code, body["error"]["code"]


# --- images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "scale_model", "fmt", "limit"),
    [((8200, 2), FAST, "webp", "16383"), ((16500, 1), "realesr-animevideov3-x4", "jpeg", "65500")],
)
def test_an_output_the_format_cannot_hold_is_refused_before_inference(
    client: TestClient, size: tuple[int, int], scale_model: str, fmt: str, limit: str
) -> None:
    data = _png(Image.new("RGB", size))
    response = client.post(
        "/v1/superres", files={"image": ("w.png", data)}, data={"model": scale_model, "format": fmt}
    )
    assert _error(response) == (413, "output_too_large_for_format")
    assert limit in response.json()["error"]["message"]


def _exif_rotated(path: Any) -> tuple[bytes, NDArray[np.uint8]]:
    """A JPEG stored sideways with EXIF Orientation=6, and the upright pixels it displays."""
    upright = Image.open(path).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # undone by orientation 6
    exif = stored.getexif()
    exif[0x0112] = 6
    return _png(stored, "JPEG", exif=exif.tobytes(), quality=95), np.asarray(upright)


@pytest.mark.parametrize("detector", ["retinaface", "mtcnn"])
def test_exif_orientation_is_applied_before_detection(client: TestClient, detector: str) -> None:
    rotated, upright = _exif_rotated(OBAMA)
    found = client.post(
        "/v1/faces/detect", files={"image": ("r.jpg", rotated)}, data={"detector": detector}
    ).json()
    assert (found["height"], found["width"]) == upright.shape[:2]
    plain = client.post(
        "/v1/faces/detect",
        files={"image": ("o.jpg", OBAMA.read_bytes())},
        data={"detector": detector},
    ).json()
    assert len(found["faces"]) == len(plain["faces"]) >= 1
    # The same face, in displayed coordinates (JPEG re-encoding moves it a little).
    assert np.abs(np.subtract(found["faces"][0]["box"], plain["faces"][0]["box"])).max() < 8


def test_superres_output_is_upright_and_carries_no_orientation(client: TestClient) -> None:
    small = Image.open(SET5 / "LR_bicubic" / "X4" / "birdx4.png").convert("RGB")
    stored = small.transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    data = _png(stored, "JPEG", exif=exif.tobytes(), quality=98)
    response = client.post("/v1/superres", files={"image": ("r.jpg", data)}, data={"model": FAST})
    out = Image.open(io.BytesIO(response.content))
    assert out.size == (2 * small.width, 2 * small.height)
    assert out.getexif().get(0x0112) in (None, 1)


def test_grey_alpha_comes_back_grey_alpha(client: TestClient) -> None:
    ramp = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))
    la = Image.fromarray(np.stack([ramp, np.full_like(ramp, 200)], axis=2), "LA")
    response = client.post(
        "/v1/superres", files={"image": ("la.png", _png(la))}, data={"model": FAST}
    )
    out = Image.open(io.BytesIO(response.content))
    assert out.mode == "LA" and out.size == (100, 80)
    assert np.abs(np.asarray(out)[:, :, 1].astype(int) - 200).max() <= 2


def test_float_tiff_is_read_by_every_endpoint(client: TestClient) -> None:
    photo = np.asarray(Image.open(OBAMA).convert("L"), np.float32) / 255.0
    tiff = _png(Image.fromarray(photo, "F"), "TIFF")
    faces = client.post("/v1/faces/detect", files={"image": ("f.tif", tiff)})
    assert faces.status_code == 200 and len(faces.json()["faces"]) >= 1
    small = _png(Image.fromarray(photo[:64, :64], "F"), "TIFF")
    up = client.post("/v1/superres", files={"image": ("s.tif", small)}, data={"model": FAST})
    assert up.status_code == 200


def test_garbage_gets_a_sentence_not_an_object_repr(client: TestClient) -> None:
    response = client.post(
        "/v1/faces/detect", files={"image": ("x.jpg", b"\xff\xd8\xff" + b"garbage" * 20)}
    )
    assert _error(response) == (422, "invalid_image")
    message = response.json()["error"]["message"]
    assert "object at 0x" not in message and "<_io" not in message
    assert message == "the JPEG header cannot be read: the file is corrupt"


# --- HTTP ------------------------------------------------------------------------------------


def test_methods_head_and_cors(client: TestClient, gateway_settings: Settings) -> None:
    traced = client.request("TRACE", "/healthz")
    assert _error(traced) == (405, "method_not_allowed") and traced.headers["allow"] == "GET"
    head = client.head("/healthz")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(client.get("/healthz").content))
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert (
        "access-control-allow-origin"
        not in client.options("/v1/superres", headers=preflight).headers
    )
    allowed = gateway_settings.model_copy(update={"cors_origins": ["https://app.example"]})
    with TestClient(create_app(allowed)) as cors:
        answer = cors.options("/v1/superres", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.example"


@pytest.fixture(scope="module")
def live(triton: object, triton_settings: Settings) -> Iterator[tuple[str, Settings]]:
    """A real HTTP gateway with short deadlines and small limits."""
    settings = triton_settings.model_copy(
        update={
            "grpc_enabled": False,
            "gateway_port": free_port(),
            "header_timeout_s": 1.0,
            "body_timeout_s": 2.0,
            "max_upload_bytes": 2 * 1024 * 1024,
            "max_job_input_bytes": 40 * 1024 * 1024,
            "max_inflight_superres": 1,
            "max_queued_requests": 0,
        }
    )
    with live_gateway(settings) as base:
        yield base, settings


def test_one_limit_per_endpoint_whatever_the_framing(live: tuple[str, Settings]) -> None:
    base, _ = live
    sent = 0

    def chunks() -> Iterator[bytes]:
        """A well-formed multipart upload of a 200 MiB file, one MiB at a time."""
        nonlocal sent
        yield (
            b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(200):
            sent += 1
            yield b"\0" * (1 << 20)
        yield b"\r\n--x--\r\n"

    with httpx.Client(base_url=base, timeout=30) as client:
        refused = client.post(
            "/v1/superres",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert _error(refused) == (413, "upload_too_large")
        assert sent < 20  # refused while streaming, not after reading 200 MiB
        # /v1/inputs has the jobs' limit: 30 MB passes there, framed either way.
        big = b"\0" * (30 * 1024 * 1024)
        stored = client.post("/v1/inputs", files={"file": ("z.bin", big)})
        assert stored.status_code == 201, stored.text
        streamed = client.post(
            "/v1/inputs",
            content=(big[i : i + (1 << 20)] for i in range(0, len(big), 1 << 20)),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert streamed.status_code == 422  # not a form: refused for what it is, not its size


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_clients_are_cut_off(live: tuple[str, Settings]) -> None:
    _, settings = live
    started = time.monotonic()
    half_request = _raw(settings.gateway_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    answer = _read_all(half_request)  # the server closes the connection
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert time.monotonic() - started < 5

    started = time.monotonic()
    body = _raw(
        settings.gateway_port,
        b"POST /v1/superres HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
        b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n',
    )
    for _ in range(3):  # then the file at 2 bytes a second
        body.sendall(b"\0\0")
        time.sleep(1)
    answer = _read_all(body)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert time.monotonic() - started < 8


def test_heavy_requests_beyond_the_limit_are_refused_with_retry_after(
    live: tuple[str, Settings],
) -> None:
    base, _ = live
    baby = (SET5 / "LR_bicubic" / "X4" / "babyx4.png").read_bytes()  # seconds of x4plus
    results: list[httpx.Response] = []

    def upscale() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            results.append(client.post("/v1/superres", files={"image": ("b.png", baby)}))

    threads = [threading.Thread(target=upscale) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses[0] == 200 and 503 in statuses
    refused = next(r for r in results if r.status_code == 503)
    assert _error(refused) == (503, "overloaded")
    assert int(refused.headers["retry-after"]) >= 1


def test_mtcnn_has_a_compute_budget(triton: object, gateway_settings: Settings) -> None:
    tight = gateway_settings.model_copy(update={"sync_budget_s": 0.5, "serving_gflops": 0.5})
    blank = _png(Image.new("RGB", (1024, 1024)))
    with TestClient(create_app(tight)) as client:
        response = client.post(
            "/v1/faces/detect", files={"image": ("b.png", blank)}, data={"detector": "mtcnn"}
        )
        assert _error(response) == (413, "compute_budget_exceeded")
        # A small image fits the same budget.
        small = _png(Image.new("RGB", (96, 96)))
        ok = client.post(
            "/v1/faces/detect", files={"image": ("s.png", small)}, data={"detector": "mtcnn"}
        )
        assert ok.status_code == 200
