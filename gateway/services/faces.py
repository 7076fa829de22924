"""Faces: detect → align → embed → verify, on models served by Triton.

Detection runs RetinaFace (one network, anchors decoded here) or the MTCNN cascade (three
networks with the pyramid and NMS here). Alignment maps the 5 landmarks onto the embedder's
template (from its card) with a similarity transform; all crops of one request go to the
embedder in one Triton call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gantry.cards import BuiltCard
from gantry.preprocess import normalise
from gantry.settings import Settings
from gateway.errors import GantryError
from gateway.faces.align import align_faces
from gateway.faces.mtcnn import detect_faces as mtcnn_detect
from gateway.faces.retinaface import PriorConfig, detect_from_outputs, resize_for_detection
from gateway.faces.types import Detection
from gateway.imaging import decode_rgb8
from gateway.services.catalog import ModelCatalog
from gateway.triton import TritonGateway

DETECTORS = ("retinaface", "mtcnn")


@dataclass(frozen=True)
class FaceResult:
    """One face in input-image pixels, with its embedding when one was computed."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    embedding: tuple[float, ...] | None = None
    model: str | None = None

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)

    def as_dict(self) -> dict[str, Any]:
        """The REST shape of a face."""
        body: dict[str, Any] = {
            "box": [round(v, 2) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
        }
        if self.embedding is not None:
            body["embedding"] = list(self.embedding)
            body["model"] = self.model
        return body


@dataclass(frozen=True)
class DetectResult:
    """Faces found in one image."""

    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)


@dataclass(frozen=True)
class EmbedResult(DetectResult):
    """Faces with embeddings."""

    model: str = ""


@dataclass(frozen=True)
class VerifyResult:
    """The comparison of the largest face of two images."""

    match: bool
    similarity: float
    threshold: float
    model: str
    face_a: FaceResult
    face_b: FaceResult


def l2_normalise(vectors: NDArray[Any]) -> NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def main_face(faces: Sequence[FaceResult], min_score: float) -> FaceResult:
    """The largest face among those scoring at least ``min_score`` (all, if none does)."""
    confident = [f for f in faces if f.score >= min_score] or list(faces)
    return max(confident, key=lambda f: f.area)


def _face(d: Detection) -> FaceResult:
    return FaceResult(box=d.box, score=d.score, landmarks=d.landmarks)


class FaceService:
    """Detection, embedding and verification."""

    def __init__(self, *, triton: TritonGateway, catalog: ModelCatalog, settings: Settings) -> None:
        self.triton = triton
        self.catalog = catalog
        self.settings = settings

    # --- decoding ---------------------------------------------------------------------------
    async def _decode(self, data: bytes) -> NDArray[np.uint8]:
        if not data:
            raise GantryError(422, "empty_upload", "the image file is empty")
        if len(data) > self.settings.max_upload_bytes:
            raise GantryError(
                413,
                "upload_too_large",
                f"the upload exceeds the limit of {self.settings.max_upload_bytes} bytes",
            )
        return await asyncio.to_thread(decode_rgb8, data, max_pixels=self.settings.max_input_pixels)

    # --- detection --------------------------------------------------------------------------
    async def _retinaface(self, rgb: NDArray[np.uint8], min_score: float) -> list[Detection]:
        built = self.catalog.require(self.settings.retinaface_model, task="face_detection")
        card = built.card
        h, w = rgb.shape[:2]
        new_h, new_w, scale = resize_for_detection(h, w, max_side=self.settings.detect_max_side)
        shrink = new_h * new_w < h * w
        resized = (
            rgb
            if (new_h, new_w) == (h, w)
            else cv2.resize(
                rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
        )
        x = normalise(resized, card)[None]
        names = [t.name for t in card.outputs]
        out = await self.triton.infer(card.name, {card.inputs[0].name: x}, names)
        assert card.priors is not None, f"{card.name} has no prior layout in its card"
        config = PriorConfig(
            min_sizes=card.priors.min_sizes, steps=card.priors.steps, variance=card.priors.variance
        )
        loc, conf, landms = (out[n][0] for n in names)
        return detect_from_outputs(
            loc,
            conf,
            landms,
            height=new_h,
            width=new_w,
            config=config,
            score_threshold=min_score,
            scale=scale,
        )

    async def _mtcnn(self, rgb: NDArray[np.uint8], min_score: float) -> list[Detection]:
        cards = [
            self.catalog.require(n, task="face_detection_stage") for n in self.settings.mtcnn_models
        ]
        loop = asyncio.get_running_loop()

        def network(built: BuiltCard) -> Any:
            names = [t.name for t in built.card.outputs]

            def call(batch: NDArray[Any]) -> tuple[NDArray[Any], ...]:
                # The cascade runs in a worker thread; Triton calls go back to the event loop.
                future = asyncio.run_coroutine_threadsafe(
                    self.triton.infer(built.card.name, {built.card.inputs[0].name: batch}, names),
                    loop,
                )
                result = future.result()
                return tuple(result[n] for n in names)

            return call

        pnet, rnet, onet = (network(c) for c in cards)
        detections = await asyncio.to_thread(
            mtcnn_detect,
            rgb,
            pnet=pnet,
            rnet=rnet,
            onet=onet,
            min_face_size=self.settings.mtcnn_min_face,
            max_batch=min(cards[1].card.max_batch_size, cards[2].card.max_batch_size),
        )
        return [d for d in detections if d.score >= min_score]

    async def detect(
        self, *, data: bytes, detector: str | None = None, min_score: float | None = None
    ) -> DetectResult:
        """Faces in an encoded image, in input pixels, by descending score."""
        rgb = await self._decode(data)
        detections = await self._detect_rgb(rgb, detector, min_score)
        return DetectResult(
            width=int(rgb.shape[1]), height=int(rgb.shape[0]), faces=[_face(d) for d in detections]
        )

    async def _detect_rgb(
        self, rgb: NDArray[np.uint8], detector: str | None, min_score: float | None
    ) -> list[Detection]:
        name = detector or self.settings.default_detector
        if name not in DETECTORS:
            raise GantryError(
                422, "unknown_detector", f"detector must be one of {', '.join(DETECTORS)}"
            )
        score = self.settings.detect_min_score if min_score is None else min_score
        if not 0.0 <= score <= 1.0:
            raise GantryError(422, "invalid_min_score", "min_score must be between 0 and 1")
        if name == "mtcnn":
            found = await self._mtcnn(rgb, score)
        else:
            found = await self._retinaface(rgb, score)
        return sorted(found, key=lambda d: -d.score)

    # --- embedding --------------------------------------------------------------------------
    def _embedder(self, model: str | None) -> BuiltCard:
        return self.catalog.require(model or self.settings.default_embedder, task="face_embedding")

    async def _embed_chips(
        self,
        built: BuiltCard,
        groups: Sequence[tuple[NDArray[np.uint8], Sequence[FaceResult]]],
    ) -> NDArray[np.float32]:
        """Align every face and embed all crops in as few Triton calls as the batch allows.

        Args:
            built: the embedder.
            groups: (image, its faces) pairs; vectors come back in the same face order.
        """
        card = built.card
        hw = card.input_hw
        if hw is None or card.landmark_template is None:
            raise GantryError(500, "bad_card", f"{card.name} has no chip size or template")
        template = np.asarray(card.landmark_template, np.float64)
        # One alignment call per image: its faces' transforms are solved together.
        aligned = [
            align_faces(image, np.asarray([f.landmarks for f in faces], np.float64), template, hw)
            for image, faces in groups
            if faces
        ]
        chips = np.concatenate(aligned) if aligned else np.zeros((0, hw[0], hw[1], 3), np.uint8)
        vectors = []
        for start in range(0, len(chips), card.max_batch_size):
            batch = normalise(chips[start : start + card.max_batch_size], card)
            out = await self.triton.infer(
                card.name, {card.inputs[0].name: batch}, [card.outputs[0].name]
            )
            vectors.append(out[card.outputs[0].name])
        if not vectors:
            return np.zeros((0, card.embedding_dim or 0), np.float32)
        return l2_normalise(np.concatenate(vectors))

    async def embed(
        self, *, data: bytes, model: str | None = None, detector: str | None = None
    ) -> EmbedResult:
        """Every face of an image with its L2-normalised embedding."""
        built = self._embedder(model)
        rgb = await self._decode(data)
        faces = [_face(d) for d in await self._detect_rgb(rgb, detector, None)]
        vectors = await self._embed_chips(built, [(rgb, faces)])
        with_vectors = [
            FaceResult(f.box, f.score, f.landmarks, tuple(float(v) for v in vec), built.card.name)
            for f, vec in zip(faces, vectors, strict=True)
        ]
        return EmbedResult(
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            faces=with_vectors,
            model=built.card.name,
        )

    # --- verification -----------------------------------------------------------------------
    async def _largest_face(self, data: bytes, which: str) -> tuple[NDArray[np.uint8], FaceResult]:
        rgb = await self._decode(data)
        faces = [_face(d) for d in await self._detect_rgb(rgb, None, None)]
        if not faces:
            raise GantryError(422, "no_face", f"no face was found in {which}")
        return rgb, main_face(faces, self.settings.verify_face_min_score)

    async def verify(
        self,
        *,
        data_a: bytes,
        data_b: bytes,
        model: str | None = None,
        threshold: float | None = None,
    ) -> VerifyResult:
        """Whether the largest faces of two images are the same person."""
        built = self._embedder(model)
        card = built.card
        limit = card.verify_threshold if threshold is None else threshold
        if limit is None:
            raise GantryError(
                422, "no_threshold", f"{card.name} has no calibrated threshold; send `threshold`"
            )
        (rgb_a, face_a), (rgb_b, face_b) = await asyncio.gather(
            self._largest_face(data_a, "image_a"), self._largest_face(data_b, "image_b")
        )
        vectors = await self._embed_chips(built, [(rgb_a, [face_a]), (rgb_b, [face_b])])
        similarity = float(np.dot(vectors[0], vectors[1]))
        faces = [
            FaceResult(f.box, f.score, f.landmarks, tuple(float(v) for v in vec), card.name)
            for f, vec in zip((face_a, face_b), vectors, strict=True)
        ]
        return VerifyResult(
            match=similarity >= limit,
            similarity=similarity,
            threshold=float(limit),
            model=card.name,
            face_a=faces[0],
            face_b=faces[1],
        )
