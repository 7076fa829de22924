"""Does frontalization keep the person, and does ``frontalize=true`` help profile-vs-frontal
verification? Measured through the served stack on the people held aside from training.

The faces: the CMU pose images (``train/cmu_faces_pose``) of the five people every
frontalizer's training holds aside (dave, henry, larry, paula, tom): their ``left`` and
``right`` half-profiles against their ``forward`` images, each upscaled 4x as a PNG (the faces
are about 20 px wide at their own size, under RetinaFace's smallest anchors). Every image
goes through ``POST /v1/faces/embed`` (its most confident face) as is and with
``frontalize=true``, for each embedder and with each frontalizer as the default.

Per embedder x frontalizer, over every (profile, frontal) pair of those people:

- **same-person cosine**: the mean similarity of a profile to the frontals of its own person,
  profile unfrontalized (the anchor) or frontalized (the frontal as is);
- **AUC**: ROC AUC of same vs different person over all pairs;
- **accuracy at the card's threshold** (what ``/v1/faces/verify`` decides) with both sides
  as is, and with both frontalized (``frontalize=true`` on verify frontalizes both images).

Run: ``.venv/bin/python -m bench.frontalize`` (writes bench/results/frontalize.md). It
measures each frontalizer's default version: publish and promote the full runs first
(``gantry train capg-gan-cmu --publish``, ``gantry models promote capg-gan-cmu 2``), or
``gantry models build NAME --weights <run>/generator.pth --force`` into a copy of the
repository, as the README's figures were made.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bench.stack import DATA, served_stack, write_result
from trainer.catalog import card
from trainer.data.frontalization import CMU_FOLDER, FRONTAL_POSE, held_aside
from trainer.evaluation.verification import roc_auc

EMBEDDERS = ("dlib-resnet-v1", "mobilefacenet-arcface")
FRONTALIZERS = ("capg-gan-cmu", "tpgan-cmu")
PROFILE_POSES = ("left", "right")
UPSCALE = 4


@dataclass(frozen=True)
class PoseImage:
    person: str
    pose: str
    png: bytes


def held_aside_images() -> list[PoseImage]:
    """The held-aside people's profiles and frontals, upscaled, as PNG bytes."""
    root = DATA / CMU_FOLDER
    with (root / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    people = sorted({r["person"] for r in rows})
    images = []
    for row in rows:
        if not held_aside(people, row["person"]) or row["pose"] not in (
            *PROFILE_POSES,
            FRONTAL_POSE,
        ):
            continue
        with Image.open(root / row["path"]) as im:
            grey = im.convert("L")
            big = grey.resize(
                (grey.width * UPSCALE, grey.height * UPSCALE), Image.Resampling.BICUBIC
            )
        buffer = io.BytesIO()
        big.save(buffer, format="PNG")
        images.append(PoseImage(row["person"], row["pose"], buffer.getvalue()))
    return images


def embeddings(
    client: httpx.Client, images: list[PoseImage], model: str, frontalize: bool
) -> list[NDArray[np.float64] | None]:
    """Each image's most confident face's embedding (None where no face was found)."""
    out: list[NDArray[np.float64] | None] = []
    for image in images:
        response = client.post(
            "/v1/faces/embed",
            files={"image": ("face.png", image.png)},
            data={"model": model, "frontalize": str(frontalize).lower()},
        )
        response.raise_for_status()
        faces = response.json()["faces"]
        out.append(np.asarray(faces[0]["embedding"]) if faces else None)
    return out


@dataclass(frozen=True)
class PairFigures:
    same_cosine: float
    auc: float
    accuracy: float
    pairs: int


def pair_figures(
    images: list[PoseImage],
    profiles: list[NDArray[np.float64] | None],
    frontals: list[NDArray[np.float64] | None],
    threshold: float,
) -> PairFigures:
    """Figures over every (profile, frontal) pair both of whose faces were found."""
    scores, same = [], []
    for image, p in zip(images, profiles, strict=True):
        if image.pose == FRONTAL_POSE or p is None:
            continue
        for other, f in zip(images, frontals, strict=True):
            if other.pose == FRONTAL_POSE and f is not None:
                scores.append(float(p @ f))
                same.append(image.person == other.person)
    s, m = np.asarray(scores), np.asarray(same)
    accuracy = float(((s >= threshold) == m).mean())
    return PairFigures(float(s[m].mean()), roc_auc(s, m), accuracy, len(s))


def main() -> None:
    images = held_aside_images()
    lines = [
        f"{sum(i.pose != FRONTAL_POSE for i in images)} half-profiles x "
        f"{sum(i.pose == FRONTAL_POSE for i in images)} frontals of the 5 held-aside people.",
        "",
        "| embedder | frontalizer | same-person cosine: as is | frontalized | AUC: as is "
        "| frontalized | accuracy at threshold: as is | both frontalized |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    plain: dict[str, list[NDArray[np.float64] | None]] = {}
    for frontalizer in FRONTALIZERS:
        with (
            served_stack(default_frontalizer=frontalizer) as base,
            httpx.Client(base_url=base, timeout=120) as client,
        ):
            for embedder in EMBEDDERS:
                spec = card(embedder).spec
                threshold = float(spec.verify_threshold)  # type: ignore[union-attr,arg-type]
                if embedder not in plain:
                    plain[embedder] = embeddings(client, images, embedder, frontalize=False)
                frontal = embeddings(client, images, embedder, frontalize=True)
                as_is = pair_figures(images, plain[embedder], plain[embedder], threshold)
                half = pair_figures(images, frontal, plain[embedder], threshold)
                both = pair_figures(images, frontal, frontal, threshold)
                lines.append(
                    f"| {embedder} | {frontalizer} | {as_is.same_cosine:.4f} "
                    f"| {half.same_cosine:.4f} | {as_is.auc:.4f} | {half.auc:.4f} "
                    f"| {as_is.accuracy:.4f} | {both.accuracy:.4f} |"
                )
    write_result("frontalize", "\n".join(lines))


if __name__ == "__main__":
    main()
