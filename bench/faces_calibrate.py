"""Calibrate the verification threshold of the served embedder on real labelled faces.

- **Calibration**: AT&T/ORL faces (every pair of the 10 photos of each person in
  ../shared/data/train/att_orl_faces). The threshold is the one maximising TPR - FPR
  (Youden's J, i.e. balanced accuracy), chosen on these pairs only.
- **Held out**: ../shared/data/faces_verify (9 photos of 5 people, its 36 listed pairs) is
  never used to choose anything; it reports how the threshold transfers to real photos.
- **Evaluation only**: Yale faces (research-only data: nothing derived from it ships).

ORL images are tight 92x112 crops; a grey border of half their size is added so the detector
sees a whole head, as in a photo. Each image's largest face is embedded through the served
stack (`/v1/faces/embed`), so the numbers include detection and alignment.

Run: ``.venv/bin/python -m bench.faces_calibrate`` (writes bench/results/faces_calibrate.md).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from bench.stack import DATA, served_stack, write_result
from bench.verification import HEADER, pair_stats, youden_threshold

ORL = DATA / "train" / "att_orl_faces"
YALE = DATA / "train" / "yale_faces" / "yalefaces"
VERIFY = DATA / "faces_verify"
MODEL = "dlib-resnet-v1"


def png_bytes(path: Path, border: float = 0.0) -> bytes:
    """The image as RGB PNG bytes, optionally with a grey border (fraction of its size)."""
    image = Image.open(path).convert("RGB")
    if border:
        pad = (int(image.width * border), int(image.height * border))
        image = ImageOps.expand(image, border=(pad[0], pad[1], pad[0], pad[1]), fill=(128,) * 3)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def embed_largest(client: httpx.Client, base: str, data: bytes) -> NDArray[np.float32] | None:
    """The embedding of the largest face, or None when no face is found."""
    response = client.post(
        f"{base}/v1/faces/embed", files={"image": ("x.png", data)}, data={"model": MODEL}
    )
    response.raise_for_status()
    faces = response.json()["faces"]
    if not faces:
        return None
    # The same rule as /v1/faces/verify: the largest of the confident faces.
    confident = [f for f in faces if f["score"] >= 0.9] or faces
    best = max(confident, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    return np.asarray(best["embedding"], np.float32)


def all_pairs(
    identities: list[str], vectors: list[NDArray[np.float32] | None]
) -> tuple[NDArray[np.float64], NDArray[np.bool_], int]:
    """Cosine of every pair of embedded images, whether they are the same person, misses."""
    kept = [(i, v) for i, v in zip(identities, vectors, strict=True) if v is not None]
    ids = [i for i, _ in kept]
    matrix = np.stack([v for _, v in kept])
    sims = matrix @ matrix.T
    rows, cols = np.triu_indices(len(kept), k=1)
    same = np.asarray([ids[r] == ids[c] for r, c in zip(rows, cols, strict=True)])
    return sims[rows, cols].astype(np.float64), same, len(vectors) - len(kept)


def embed_all(
    client: httpx.Client, base: str, items: Iterable[tuple[str, bytes]]
) -> tuple[list[str], list[NDArray[np.float32] | None]]:
    ids, vectors = [], []
    for identity, data in items:
        ids.append(identity)
        vectors.append(embed_largest(client, base, data))
    return ids, vectors


def orl_items() -> list[tuple[str, bytes]]:
    return [
        (folder.name, png_bytes(path, border=0.5))
        for folder in sorted(ORL.glob("s*"))
        for path in sorted(folder.glob("*.pgm"))
    ]


def yale_items() -> list[tuple[str, bytes]]:
    # The database has pixel-identical duplicates of "normal"; keep one of each.
    seen: set[bytes] = set()
    items = []
    for path in sorted(YALE.glob("subject*")):
        raw = path.read_bytes()
        if raw in seen:
            continue
        seen.add(raw)
        items.append((path.name.split(".")[0], png_bytes(path)))
    return items


def verify_pairs(client: httpx.Client, base: str) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    cache: dict[str, NDArray[np.float32] | None] = {}
    scores, same = [], []
    with (VERIFY / "pairs_face_recognition_knn.csv").open() as fh:
        for row in csv.DictReader(fh):
            for key in (row["img_a"], row["img_b"]):
                if key not in cache:
                    cache[key] = embed_largest(client, base, (VERIFY / key).read_bytes())
            a, b = cache[row["img_a"]], cache[row["img_b"]]
            if a is None or b is None:
                raise RuntimeError(f"no face in {row}")
            scores.append(float(a @ b))
            same.append(row["same"] == "1")
    return np.asarray(scores), np.asarray(same)


def main() -> str:
    with served_stack() as base, httpx.Client(timeout=600) as client:
        orl_ids, orl_vecs = embed_all(client, base, orl_items())
        yale_ids, yale_vecs = embed_all(client, base, yale_items())
        verify_scores, verify_same = verify_pairs(client, base)
    orl_scores, orl_same, orl_missed = all_pairs(orl_ids, orl_vecs)
    yale_scores, yale_same, yale_missed = all_pairs(yale_ids, yale_vecs)
    threshold = youden_threshold(orl_scores, orl_same)
    lines = [
        f"Model `{MODEL}`; cosine similarity of L2-normalised embeddings. Threshold chosen on "
        f"ORL by Youden's J: **{threshold:.4f}**.",
        "",
        HEADER,
        pair_stats(orl_scores, orl_same, threshold).row(
            f"AT&T/ORL, calibration ({orl_missed} of {len(orl_ids)} images without a face)"
        ),
        pair_stats(verify_scores, verify_same, threshold).row("faces_verify, held out"),
        pair_stats(yale_scores, yale_same, threshold).row(
            f"Yale, evaluation only ({yale_missed} of {len(yale_ids)} images without a face)"
        ),
        "",
        "faces_verify similarities: same person "
        + ", ".join(f"{s:.3f}" for s in np.sort(verify_scores[verify_same]))
        + f"; different people max {verify_scores[~verify_same].max():.3f}.",
    ]
    return write_result("faces_calibrate", "\n".join(lines))


if __name__ == "__main__":
    main()
