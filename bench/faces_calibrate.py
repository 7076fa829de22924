"""Calibrate the verification threshold of each served embedder on real labelled faces, and
compare them with the face_recognition library on the same pairs.

- **Calibration**: AT&T/ORL faces (every pair of the 10 photos of each person in
  ../shared/data/train/att_orl_faces). The threshold is the one maximising TPR - FPR
  (Youden's J, i.e. balanced accuracy), chosen on these pairs only.
- **Held out**: ../shared/data/faces_verify (9 photos of 5 people, its 36 listed pairs) is
  never used to choose anything; it reports how the threshold transfers to real photos.
- **Evaluation only**: Yale faces (research-only data: nothing derived from it ships).
- **Anchor**: face_recognition's own recipe on the same images (dlib HOG detector, its
  128-d encodings, score = -distance), at the library's 0.6 rule and at its own Youden
  threshold on ORL.

ORL images are tight 92x112 crops; a grey border of half their size is added so the detector
sees a whole head, as in a photo. Each image's largest face is embedded through the served
stack (`/v1/faces/embed`), so the numbers include detection and alignment.

Run: ``.venv/bin/python -m bench.faces_calibrate [MODEL ...] [--align LANDMARK_MODEL]``
(default: every embedder below, aligned by the detector's five points; writes
bench/results/faces_calibrate.md, or faces_calibrate-align-<model>.md with ``--align``:
the embedders only, their chips aligned by that landmark model's points).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from bench.stack import DATA, served_stack, write_result
from trainer.evaluation.verification import HEADER, pair_stats, youden_threshold

ORL = DATA / "train" / "att_orl_faces"
YALE = DATA / "train" / "yale_faces" / "yalefaces"
VERIFY = DATA / "faces_verify"
MODELS = ("dlib-resnet-v1", "mobilefacenet-arcface")
#: face_recognition's recommended rule: the same person at Euclidean distance <= 0.6.
FACE_RECOGNITION_DISTANCE = 0.6

Vector = NDArray[np.float32] | None
#: An image's bytes → the vector of its largest face (None when no face is found).
Embed = Callable[[bytes], Vector]


def png_bytes(path: Path, border: float = 0.0) -> bytes:
    """The image as RGB PNG bytes, optionally with a grey border (fraction of its size)."""
    image = Image.open(path).convert("RGB")
    if border:
        pad = (int(image.width * border), int(image.height * border))
        image = ImageOps.expand(image, border=(pad[0], pad[1], pad[0], pad[1]), fill=(128,) * 3)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def embed_largest(
    client: httpx.Client, base: str, model: str, data: bytes, align: str = "detector"
) -> Vector:
    """The served embedding of the largest face, or None when no face is found."""
    response = client.post(
        f"{base}/v1/faces/embed",
        files={"image": ("x.png", data)},
        data={"model": model, "align": align},
    )
    response.raise_for_status()
    faces = response.json()["faces"]
    if not faces:
        return None
    # The same rule as /v1/faces/verify: the largest of the confident faces.
    confident = [f for f in faces if f["score"] >= 0.9] or faces
    best = max(confident, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
    return np.asarray(best["embedding"], np.float32)


def cosine_matrix(matrix: NDArray[np.float32]) -> NDArray[np.float64]:
    """Similarities of the served (already L2-normalised) embeddings."""
    return (matrix @ matrix.T).astype(np.float64)


def negative_distance_matrix(matrix: NDArray[np.float32]) -> NDArray[np.float64]:
    """face_recognition's score: minus the Euclidean distance of its encodings."""
    m = matrix.astype(np.float64)
    return -np.linalg.norm(m[:, None, :] - m[None, :, :], axis=2)


def all_pairs(
    identities: list[str],
    vectors: list[Vector],
    score: Callable[[NDArray[np.float32]], NDArray[np.float64]] = cosine_matrix,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], int]:
    """Score of every pair of embedded images, whether they are the same person, misses."""
    kept = [(i, v) for i, v in zip(identities, vectors, strict=True) if v is not None]
    ids = [i for i, _ in kept]
    sims = score(np.stack([v for _, v in kept]))
    rows, cols = np.triu_indices(len(kept), k=1)
    same = np.asarray([ids[r] == ids[c] for r, c in zip(rows, cols, strict=True)])
    return sims[rows, cols].astype(np.float64), same, len(vectors) - len(kept)


def face_recognition_largest(data: bytes) -> Vector:
    """face_recognition's encoding of the largest HOG face (its defaults: one upsampling)."""
    import face_recognition

    image = face_recognition.load_image_file(io.BytesIO(data))
    boxes = face_recognition.face_locations(image)
    if not boxes:
        return None
    largest = max(boxes, key=lambda t: (t[2] - t[0]) * (t[1] - t[3]))
    return np.asarray(face_recognition.face_encodings(image, [largest])[0], np.float32)


def embed_all(embed: Embed, items: Iterable[tuple[str, bytes]]) -> tuple[list[str], list[Vector]]:
    ids, vectors = [], []
    for identity, data in items:
        ids.append(identity)
        vectors.append(embed(data))
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


def verify_pairs(
    embed: Embed, score: Callable[[NDArray[np.float32]], NDArray[np.float64]] = cosine_matrix
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    cache: dict[str, Vector] = {}
    scores, same = [], []
    with (VERIFY / "pairs_face_recognition_knn.csv").open() as fh:
        for row in csv.DictReader(fh):
            for key in (row["img_a"], row["img_b"]):
                if key not in cache:
                    cache[key] = embed((VERIFY / key).read_bytes())
            a, b = cache[row["img_a"]], cache[row["img_b"]]
            if a is None or b is None:
                raise RuntimeError(f"no face in {row}")
            scores.append(float(score(np.stack([a, b]))[0, 1]))
            same.append(row["same"] == "1")
    return np.asarray(scores), np.asarray(same)


def report(
    title: str,
    embed: Embed,
    orl: list[tuple[str, bytes]],
    yale: list[tuple[str, bytes]],
    score: Callable[[NDArray[np.float32]], NDArray[np.float64]] = cosine_matrix,
    fixed_threshold: float | None = None,
) -> list[str]:
    """One embedder's section: threshold on ORL, then ORL, faces_verify and Yale rows.

    With ``fixed_threshold`` (an anchor's own published rule) the rows are given at that
    threshold too.
    """
    orl_ids, orl_vecs = embed_all(embed, orl)
    yale_ids, yale_vecs = embed_all(embed, yale)
    verify_scores, verify_same = verify_pairs(embed, score)
    orl_scores, orl_same, orl_missed = all_pairs(orl_ids, orl_vecs, score)
    yale_scores, yale_same, yale_missed = all_pairs(yale_ids, yale_vecs, score)
    threshold = youden_threshold(orl_scores, orl_same)
    lines = [f"{title} Threshold chosen on ORL by Youden's J: **{threshold:.4f}**.", "", HEADER]
    for label, limit in [("", threshold)] + (
        [(" (library rule)", fixed_threshold)] if fixed_threshold is not None else []
    ):
        lines += [
            pair_stats(orl_scores, orl_same, limit).row(
                f"AT&T/ORL, calibration{label} ({orl_missed} of {len(orl_ids)} images without "
                "a face)"
            ),
            pair_stats(verify_scores, verify_same, limit).row(f"faces_verify, held out{label}"),
            pair_stats(yale_scores, yale_same, limit).row(
                f"Yale, evaluation only{label} ({yale_missed} of {len(yale_ids)} images "
                "without a face)"
            ),
        ]
    lines += [
        "",
        "faces_verify scores: same person "
        + ", ".join(f"{s:.3f}" for s in np.sort(verify_scores[verify_same]))
        + f"; different people max {verify_scores[~verify_same].max():.3f}.",
        "",
    ]
    return lines


def main(models: Sequence[str] = MODELS, align: str = "detector") -> str:
    """Every embedder in ``models``, aligned by ``align`` (the detector's five points, or a
    landmark model's), then the face_recognition anchor."""
    orl, yale = orl_items(), yale_items()
    lines: list[str] = []
    points = "5-point" if align == "detector" else f"{align}'s 68 points → five"
    with served_stack() as base, httpx.Client(timeout=600) as client:
        for model in models:
            lines += report(
                f"Model `{model}` (served: RetinaFace → {points} → template → embedder); "
                "cosine similarity of L2-normalised embeddings.",
                lambda data, m=model: embed_largest(client, base, m, data, align),  # type: ignore[misc]
                orl,
                yale,
            )
    if align != "detector":
        return write_result(f"faces_calibrate-align-{align}", "\n".join(lines).rstrip())
    lines += report(
        "Anchor `face_recognition` 1.3.0 (in-process: dlib HOG detector, one upsampling, "
        "its 128-d encodings); score = minus the Euclidean distance.",
        face_recognition_largest,
        orl,
        yale,
        score=negative_distance_matrix,
        fixed_threshold=-FACE_RECOGNITION_DISTANCE,
    )
    return write_result("faces_calibrate", "\n".join(lines).rstrip())


if __name__ == "__main__":
    args = sys.argv[1:]
    alignment = "detector"
    if "--align" in args:
        at = args.index("--align")
        alignment, args = args[at + 1], args[:at] + args[at + 2 :]
    main(args or MODELS, alignment)
