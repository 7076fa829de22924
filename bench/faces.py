"""Face verification: Gantry over REST and gRPC vs the face_recognition library, one run.

Same pairs for everyone (../shared/data/faces_verify, its 36 listed pairs, largest face of
each image):
- **face_recognition** (dlib HOG detector + the same dlib ResNet descriptor, in-process,
  `face_distance <= 0.6` as the library recommends), one pair at a time;
- **gantry REST**: `POST /v1/faces/verify` (RetinaFace → align → dlib descriptor in Triton),
  one request at a time (latency) and 4 at a time (throughput); and with each embedder of
  ``OTHER_EMBEDDERS`` (``model=``), one at a time;
- **gantry gRPC**: `Verify` one at a time, and all pairs through one `VerifyStream`.
Pairs per second and latency are reported as ratios to face_recognition, with accuracy.

Run: ``.venv/bin/python -m bench.faces`` (writes bench/results/faces.md).
"""

from __future__ import annotations

import csv
import os
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import numpy as np

from bench.stack import DATA, current_grpc_target, served_stack, write_result
from gateway.grpc.protos import ensure_generated

ensure_generated()
from gantry.v1 import faces_pb2, faces_pb2_grpc  # noqa: E402

VERIFY = DATA / "faces_verify"
# Served embedders measured besides the default one (REST, sequential).
OTHER_EMBEDDERS = ("mobilefacenet-arcface",)
Pair = tuple[bytes, bytes, bool]


def load_pairs() -> list[Pair]:
    pairs = []
    with (VERIFY / "pairs_face_recognition_knn.csv").open() as fh:
        for row in csv.DictReader(fh):
            a, b = (VERIFY / row["img_a"]).read_bytes(), (VERIFY / row["img_b"]).read_bytes()
            pairs.append((a, b, row["same"] == "1"))
    return pairs


def face_recognition_verify(a: bytes, b: bytes) -> bool:
    """The library's own recipe: HOG faces, 128-d encodings, distance <= 0.6."""
    import io

    import face_recognition

    encodings = []
    for data in (a, b):
        image = face_recognition.load_image_file(io.BytesIO(data))
        boxes = face_recognition.face_locations(image)
        if not boxes:
            raise RuntimeError("face_recognition found no face")
        largest = max(boxes, key=lambda t: (t[2] - t[0]) * (t[1] - t[3]))
        encodings.append(face_recognition.face_encodings(image, [largest])[0])
    distance = face_recognition.face_distance([encodings[0]], encodings[1])[0]
    return bool(distance <= 0.6)


def run_sequential(
    pairs: list[Pair], verify: Callable[[bytes, bytes], bool]
) -> tuple[float, list[float], float]:
    """(pairs/s, per-pair latencies, accuracy) one pair at a time."""
    verify(pairs[0][0], pairs[0][1])  # warm-up
    latencies, correct = [], 0
    start = time.perf_counter()
    for a, b, same in pairs:
        t0 = time.perf_counter()
        correct += verify(a, b) == same
        latencies.append(time.perf_counter() - t0)
    return len(pairs) / (time.perf_counter() - start), latencies, correct / len(pairs)


def run_concurrent(
    pairs: list[Pair], verify: Callable[[bytes, bytes], bool], workers: int
) -> float:
    """Pairs per second with ``workers`` requests in flight."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda p: verify(p[0], p[1]), pairs))
    return len(pairs) / (time.perf_counter() - start)


def main() -> str:
    pairs = load_pairs()
    results: dict[str, tuple[float, float, float | None]] = {}  # pairs/s, p50 latency, accuracy
    rate, lat, acc = run_sequential(pairs, face_recognition_verify)
    results["face_recognition (in-process, sequential)"] = (rate, statistics.median(lat), acc)
    with served_stack() as base, httpx.Client(timeout=120) as client:

        def rest(a: bytes, b: bytes) -> bool:
            r = client.post(
                f"{base}/v1/faces/verify", files={"image_a": ("a", a), "image_b": ("b", b)}
            )
            r.raise_for_status()
            return bool(r.json()["match"])

        rate, lat, acc = run_sequential(pairs, rest)
        results["gantry REST (sequential)"] = (rate, statistics.median(lat), acc)
        results["gantry REST (4 in flight)"] = (run_concurrent(pairs, rest, 4), float("nan"), None)

        for model in OTHER_EMBEDDERS:

            def rest_with(a: bytes, b: bytes, model: str = model) -> bool:
                r = client.post(
                    f"{base}/v1/faces/verify",
                    files={"image_a": ("a", a), "image_b": ("b", b)},
                    data={"model": model},
                )
                r.raise_for_status()
                return bool(r.json()["match"])

            rate, lat, acc = run_sequential(pairs, rest_with)
            results[f"gantry REST, model={model} (sequential)"] = (
                rate,
                statistics.median(lat),
                acc,
            )

        with grpc.insecure_channel(current_grpc_target()) as channel:
            stub = faces_pb2_grpc.FaceVerificationStub(channel)

            def unary(a: bytes, b: bytes) -> bool:
                return bool(stub.Verify(faces_pb2.VerifyRequest(image_a=a, image_b=b)).match)

            rate, lat, acc = run_sequential(pairs, unary)
            results["gantry gRPC Verify (sequential)"] = (rate, statistics.median(lat), acc)

            def requests() -> Iterator[faces_pb2.VerifyRequest]:
                for i, (a, b, _) in enumerate(pairs):
                    yield faces_pb2.VerifyRequest(image_a=a, image_b=b, id=str(i))

            start = time.perf_counter()
            answers = list(stub.VerifyStream(requests()))
            stream_rate = len(pairs) / (time.perf_counter() - start)
            stream_acc = float(
                np.mean([r.match == p[2] for r, p in zip(answers, pairs, strict=True)])
            )
            results["gantry gRPC VerifyStream (one stream)"] = (
                stream_rate,
                float("nan"),
                stream_acc,
            )
    anchor_rate, anchor_lat, _ = results["face_recognition (in-process, sequential)"]
    rows = [
        f"{len(pairs)} pairs ({sum(p[2] for p in pairs)} same person), {os.cpu_count()} CPU cores.",
        "",
        "| path | pairs/s | throughput vs face_recognition | p50 latency (s) "
        "| latency vs face_recognition | accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for label, (rate, p50, accuracy) in results.items():
        lat_cell = "–" if np.isnan(p50) else f"{p50:.3f}"
        lat_ratio = "–" if np.isnan(p50) else f"{anchor_lat / p50:.2f}x faster"
        acc_cell = "–" if accuracy is None else f"{accuracy:.4f}"
        rows.append(
            f"| {label} | {rate:.2f} | {rate / anchor_rate:.2f}x | {lat_cell} | {lat_ratio} "
            f"| {acc_cell} |"
        )
    return write_result("faces", "\n".join(rows))


if __name__ == "__main__":
    main()
