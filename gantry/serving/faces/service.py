"""Faces: detect → align → embed → verify, on models served by Triton.

Detection runs RetinaFace (one network, anchors from its card decoded here) or the MTCNN
cascade (three networks with the pyramid and NMS here). Alignment maps the 5 landmarks onto
the embedder's template (from its card) with a similarity transform; all crops of one request
go to the embedder in one Triton call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from gantry.core.alignment import align_faces
from gantry.core.cards import (
    BuiltCard,
    DetectionSpec,
    EmbeddingSpec,
    FrontalizationSpec,
    LandmarksSpec,
)
from gantry.core.errors import Internal, InvalidInput, TooLarge
from gantry.core.imaging import decode_rgb8
from gantry.core.landmarks import (
    FIVE_POINT_SCHEMES,
    crop_squares,
    cut_crops,
    five_points,
    to_image_points,
)
from gantry.core.preprocess import normalise, normalise_grey
from gantry.core.registry import Registry
from gantry.core.settings import Settings
from gantry.serving.catalog import ModelCatalog
from gantry.serving.faces.mtcnn import detect_faces as mtcnn_detect
from gantry.serving.faces.mtcnn import pyramid_scales
from gantry.serving.faces.retinaface import detect_from_outputs, resize_for_detection
from gantry.serving.faces.types import Detection
from gantry.serving.image_to_image import ThroughputEstimator
from gantry.serving.triton import TritonClient

# The accepted ranges of the request options, shared by REST (form validation) and gRPC.
MIN_SCORE_RANGE = (0.0, 1.0)
# ``align``: the detector's own five points, or those of a landmark model (its name).
DETECTOR_ALIGNMENT = "detector"
THRESHOLD_RANGE = (-1.0, 1.0)  # cosine similarity


def in_range(value: float, bounds: tuple[float, float]) -> bool:
    """``lo <= value <= hi`` (False for NaN)."""
    return bounds[0] <= value <= bounds[1]


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

    def rounded(self) -> FaceResult:
        """Coordinates rounded to 0.01 px and scores to 1e-5, as the APIs report them."""
        return FaceResult(
            box=(
                round(self.box[0], 2),
                round(self.box[1], 2),
                round(self.box[2], 2),
                round(self.box[3], 2),
            ),
            score=round(self.score, 5),
            landmarks=tuple((round(x, 2), round(y, 2)) for x, y in self.landmarks),
            embedding=self.embedding,
            model=self.model,
        )


@dataclass(frozen=True)
class DetectResult:
    """Faces found in one image, and the detector models (name, version) that found them."""

    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)
    detector: str = ""
    models: tuple[tuple[str, int], ...] = ()

    def detection(self, faces: Sequence[FaceResult] | None = None) -> dict[str, Any]:
        """This result's detection fields (with other ``faces``), to build a subclass's."""
        return {
            "width": self.width,
            "height": self.height,
            "faces": list(self.faces if faces is None else faces),
            "detector": self.detector,
            "models": self.models,
        }


@dataclass(frozen=True)
class EmbedResult(DetectResult):
    """Faces with embeddings."""

    model: str = ""
    version: int = 0


@dataclass(frozen=True)
class LandmarksResult(DetectResult):
    """Faces with the landmark model's points (its card's count and scheme)."""

    model: str = ""
    version: int = 0
    scheme: str = ""


@dataclass(frozen=True)
class FrontalizeResult(DetectResult):
    """Faces with their frontal views: ``chips[k]`` is face k's (S, S) 8-bit grey chip."""

    chips: tuple[NDArray[np.uint8], ...] = ()
    model: str = ""
    version: int = 0
    landmark_model: tuple[str, int] = ("", 0)


@dataclass(frozen=True)
class VerifyResult:
    """The comparison of the largest face of two images."""

    match: bool
    similarity: float
    threshold: float
    model: str
    version: int
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


Found = tuple[list[Detection], list[BuiltCard]]
Detector = Callable[["FacePipeline", NDArray[np.uint8], float, int | None], Awaitable[Found]]
DETECTORS: Registry[Detector] = Registry("detector")


def landmarks_spec(built: BuiltCard) -> LandmarksSpec:
    spec = built.card.spec
    if not isinstance(spec, LandmarksSpec) or built.card.input_hw is None:
        raise Internal("bad_card", f"{built.name} has no crop size or point layout")
    return spec


def frontalization_spec(built: BuiltCard) -> FrontalizationSpec:
    spec = built.card.spec
    if not isinstance(spec, FrontalizationSpec) or built.card.input_hw is None:
        raise Internal("bad_card", f"{built.name} has no crop size or frontal template")
    return spec


def embedding_spec(built: BuiltCard) -> EmbeddingSpec:
    spec = built.card.spec
    if not isinstance(spec, EmbeddingSpec) or built.card.input_hw is None:
        raise Internal("bad_card", f"{built.name} has no chip size or landmark template")
    return spec


class FacePipeline:
    """Detection, embedding and verification."""

    def __init__(
        self,
        *,
        triton: TritonClient,
        catalog: ModelCatalog,
        settings: Settings,
        estimator: ThroughputEstimator,
    ) -> None:
        self.triton = triton
        self.catalog = catalog
        self.settings = settings
        self.estimator = estimator

    def check_budget(self, key: str, gflop: float, what: str) -> None:
        """Refuse work the learnt rate says would exceed the synchronous budget."""
        seconds = gflop / self.estimator.rate(key)
        if seconds > self.settings.sync_budget_s:
            raise TooLarge(
                "compute_budget_exceeded",
                f"{what} needs about {gflop:.1f} GFLOP, about {seconds:.0f} s on this server, over "
                f"the synchronous budget of {self.settings.sync_budget_s:.0f} s; send a smaller "
                "image (or use detector=retinaface, which works at a bounded size)",
            )

    # --- decoding ---------------------------------------------------------------------------
    async def decode(self, data: bytes) -> NDArray[np.uint8]:
        """An upload as 8-bit RGB, after the size checks every face endpoint shares."""
        if not data:
            raise InvalidInput("empty_upload", "the image file is empty")
        if len(data) > self.settings.max_upload_bytes:
            raise TooLarge(
                "upload_too_large",
                f"the upload exceeds the limit of {self.settings.max_upload_bytes} bytes",
            )
        return await asyncio.to_thread(decode_rgb8, data, max_pixels=self.settings.max_input_pixels)

    async def infer_faces(self, built: BuiltCard, *inputs: NDArray[Any]) -> NDArray[Any] | None:
        """``built``'s first output for per-face inputs (one array per card input, faces
        first), in as few Triton calls as its batch allows; None when there are no faces."""
        card = built.card
        names = [t.name for t in card.inputs]
        output = card.outputs[0].name
        parts = []
        for start in range(0, len(inputs[0]), card.max_batch_size):
            batch = {
                n: x[start : start + card.max_batch_size]
                for n, x in zip(names, inputs, strict=True)
            }
            out = await self.triton.infer(card.name, batch, [output], version=built.version)
            parts.append(out[output])
        return np.concatenate(parts) if parts else None

    # --- detection --------------------------------------------------------------------------
    @DETECTORS.register("retinaface")
    async def _retinaface(
        self, rgb: NDArray[np.uint8], min_score: float, version: int | None
    ) -> Found:
        built = self.catalog.resolve(
            self.settings.retinaface_model, task="face_detection", version=version
        )
        card = built.card
        spec = card.spec
        if not isinstance(spec, DetectionSpec):
            raise Internal("bad_card", f"{card.name} has no prior layout in its card")
        h, w = rgb.shape[:2]
        new_h, new_w, scale = resize_for_detection(
            h, w, max_side=self.settings.detect_max_side, multiple=card.size_multiple
        )
        shrink = new_h * new_w < h * w
        resized = (
            rgb
            if (new_h, new_w) == (h, w)
            else cv2.resize(
                rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
        )
        gflop = built.build.gflops_per_input_pixel * new_h * new_w
        self.check_budget(card.name, gflop, f"RetinaFace on {new_w}x{new_h}")
        started = time.perf_counter()
        x = normalise(resized, card)[None]
        names = [t.name for t in card.outputs]
        out = await self.triton.infer(
            card.name, {card.inputs[0].name: x}, names, version=built.version
        )
        self.estimator.observe(card.name, gflop, time.perf_counter() - started)
        loc, conf, landms = (out[n][0] for n in names)
        found = detect_from_outputs(
            loc,
            conf,
            landms,
            height=new_h,
            width=new_w,
            config=spec.priors,
            score_threshold=min_score,
            nms_threshold=spec.nms_threshold,
            scale=scale,
        )
        return found, [built]

    @DETECTORS.register("mtcnn")
    async def _mtcnn(self, rgb: NDArray[np.uint8], min_score: float, version: int | None) -> Found:
        stages = [
            self.catalog.resolve(n, task="face_detection_stage", version=version)
            for n in self.settings.mtcnn_models
        ]
        loop = asyncio.get_running_loop()

        def network(built: BuiltCard) -> Any:
            card = built.card
            names = [t.name for t in card.outputs]

            def call(pixels: NDArray[Any]) -> tuple[NDArray[Any], ...]:
                # The cascade runs in a worker thread; Triton calls go back to the event loop.
                batch = normalise(pixels, card)
                future = asyncio.run_coroutine_threadsafe(
                    self.triton.infer(
                        card.name, {card.inputs[0].name: batch}, names, version=built.version
                    ),
                    loop,
                )
                result = future.result()
                return tuple(result[n] for n in names)

            return call

        pnet, rnet, onet = (network(c) for c in stages)
        # P-Net runs on every pyramid level: its pixels bound the cascade's work.
        h, w = rgb.shape[:2]
        scales = pyramid_scales(h, w, min_face_size=self.settings.mtcnn_min_face)
        level_pixels = sum(int(h * s + 1) * int(w * s + 1) for s in scales)
        gflop = stages[0].build.gflops_per_input_pixel * level_pixels
        self.check_budget("mtcnn", gflop, f"the MTCNN pyramid of a {w}x{h} image")
        started = time.perf_counter()
        detections = await asyncio.to_thread(
            mtcnn_detect,
            rgb,
            pnet=pnet,
            rnet=rnet,
            onet=onet,
            min_face_size=self.settings.mtcnn_min_face,
            max_batch=min(stages[1].card.max_batch_size, stages[2].card.max_batch_size),
        )
        self.estimator.observe("mtcnn", gflop, time.perf_counter() - started)
        return [d for d in detections if d.score >= min_score], stages

    def check_detect_options(self, detector: str | None, min_score: float | None) -> None:
        """Raise InvalidInput for an unknown detector or a score outside [0, 1]."""
        if detector is not None and detector not in DETECTORS:
            raise InvalidInput(
                "unknown_detector", f"detector must be one of {', '.join(DETECTORS.names())}"
            )
        if min_score is not None and not in_range(min_score, MIN_SCORE_RANGE):
            raise InvalidInput("invalid_min_score", "min_score must be between 0 and 1")

    async def detect_rgb(
        self,
        rgb: NDArray[np.uint8],
        detector: str | None,
        min_score: float | None,
        version: int | None = None,
    ) -> Found:
        """Faces in decoded pixels by descending score, and the detector models used."""
        self.check_detect_options(detector, min_score)
        name = detector or self.settings.default_detector
        score = self.settings.detect_min_score if min_score is None else min_score
        found, models = await DETECTORS.get(name)(self, rgb, score, version)
        return sorted(found, key=lambda d: -d.score), models

    async def detect(
        self,
        *,
        data: bytes,
        detector: str | None = None,
        min_score: float | None = None,
        version: int | None = None,
    ) -> DetectResult:
        """Faces in an encoded image, in input pixels, by descending score.

        ``version`` is the detector's model version (all three networks of MTCNN).
        """
        _, found = await self.detected(data, detector, min_score, version)
        return found

    async def detected(
        self,
        data: bytes,
        detector: str | None,
        min_score: float | None,
        version: int | None = None,
    ) -> tuple[NDArray[np.uint8], DetectResult]:
        """The decoded image and its faces (what every face endpoint starts from)."""
        self.check_detect_options(detector, min_score)
        rgb = await self.decode(data)
        detections, models = await self.detect_rgb(rgb, detector, min_score, version)
        return rgb, DetectResult(
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            faces=[_face(d) for d in detections],
            detector=detector or self.settings.default_detector,
            models=tuple((m.name, m.version) for m in models),
        )

    # --- embedding --------------------------------------------------------------------------
    def embedder(self, model: str | None, version: int | None = None) -> BuiltCard:
        """The embedding model's card (the default embedder when ``model`` is None)."""
        return self.catalog.resolve(
            model or self.settings.default_embedder, task="face_embedding", version=version
        )

    async def embed_chips(
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
        spec = embedding_spec(built)
        hw = card.input_hw
        assert hw is not None  # embedding_spec checked it
        template = np.asarray(spec.landmark_template, np.float64)
        # One alignment call per image: its faces' transforms are solved together.
        aligned = [
            align_faces(image, np.asarray([f.landmarks for f in faces], np.float64), template, hw)
            for image, faces in groups
            if faces
        ]
        chips = np.concatenate(aligned) if aligned else np.zeros((0, hw[0], hw[1], 3), np.uint8)
        vectors = await self.infer_faces(built, normalise(chips, card))
        if vectors is None:
            return np.zeros((0, spec.embedding_dim), np.float32)
        return l2_normalise(vectors)

    async def embed(
        self,
        *,
        data: bytes,
        model: str | None = None,
        version: int | None = None,
        detector: str | None = None,
        align: str | None = None,
        frontalize: bool = False,
    ) -> EmbedResult:
        """Every face of an image with its L2-normalised embedding; ``align`` and
        ``frontalize`` as in :meth:`embedding_groups`."""
        built = self.embedder(model, version)
        rgb, found = await self.detected(data, detector, None)
        vectors = await self.embed_chips(
            built, await self.embedding_groups(rgb, found.faces, align, frontalize)
        )
        with_vectors = [
            FaceResult(f.box, f.score, f.landmarks, tuple(float(v) for v in vec), built.name)
            for f, vec in zip(found.faces, vectors, strict=True)
        ]
        return EmbedResult(**found.detection(with_vectors), model=built.name, version=built.version)

    # --- landmarks --------------------------------------------------------------------------
    def landmarker(self, model: str | None, version: int | None = None) -> BuiltCard:
        """The landmark model's card (the default landmark model when ``model`` is None)."""
        return self.catalog.resolve(
            model or self.settings.default_landmark_model, task="face_landmarks", version=version
        )

    async def locate_points(
        self, built: BuiltCard, rgb: NDArray[np.uint8], faces: Sequence[FaceResult]
    ) -> NDArray[np.float64]:
        """``(K, P, 2)`` landmark points of each face, in input pixels: the card's square crop
        around each box, all crops of the image in as few Triton calls as the batch allows."""
        card = built.card
        spec = landmarks_spec(built)
        hw = card.input_hw
        assert hw is not None  # landmarks_spec checked it
        squares = crop_squares([f.box for f in faces], spec.crop_scale)
        crops = cut_crops(rgb, squares, hw)
        points = await self.infer_faces(built, normalise(crops, card))
        if points is None:
            return np.zeros((0, spec.num_points, 2), np.float64)
        if points.shape[1:] != (spec.num_points, 2):
            raise Internal(
                "bad_model_output",
                f"{built.name} answered {points.shape[1:]}, not ({spec.num_points}, 2) points",
            )
        return to_image_points(points, squares)

    async def landmarks(
        self,
        *,
        data: bytes,
        model: str | None = None,
        version: int | None = None,
        detector: str | None = None,
        min_score: float | None = None,
    ) -> LandmarksResult:
        """Every face of an image with the landmark model's points, in input pixels;
        ``version`` is the landmark model's."""
        built = self.landmarker(model, version)
        spec = landmarks_spec(built)
        rgb, found = await self.detected(data, detector, min_score)
        points = await self.locate_points(built, rgb, found.faces)
        located = [
            FaceResult(f.box, f.score, tuple((float(x), float(y)) for x, y in p))
            for f, p in zip(found.faces, points, strict=True)
        ]
        return LandmarksResult(
            **found.detection(located), model=built.name, version=built.version, scheme=spec.scheme
        )

    async def alignment_faces(
        self, rgb: NDArray[np.uint8], faces: Sequence[FaceResult], align: str | None
    ) -> Sequence[FaceResult]:
        """The faces with the five points embedder chips are aligned by: the detector's
        (``align`` None or "detector"), or those a landmark model's points give (its eye
        centres, nose tip and mouth corners)."""
        if align is None or align == DETECTOR_ALIGNMENT or not faces:
            return faces
        built = self.landmarker(align)
        spec = landmarks_spec(built)
        if spec.scheme not in FIVE_POINT_SCHEMES:
            raise InvalidInput(
                "invalid_alignment",
                f"{built.name}'s {spec.scheme} points do not give the five alignment points; "
                f"align with a model of scheme {', '.join(FIVE_POINT_SCHEMES)}",
            )
        five = five_points(await self.locate_points(built, rgb, faces), spec.scheme)
        return [
            FaceResult(f.box, f.score, tuple((float(x), float(y)) for x, y in p))
            for f, p in zip(faces, five, strict=True)
        ]

    # --- frontalization ----------------------------------------------------------------------
    def frontalizer(self, model: str | None, version: int | None = None) -> BuiltCard:
        """The frontalizer's card (the default frontalizer when ``model`` is None)."""
        return self.catalog.resolve(
            model or self.settings.default_frontalizer, task="face_frontalization", version=version
        )

    async def frontal_chips(
        self, built: BuiltCard, rgb: NDArray[np.uint8], faces: Sequence[FaceResult]
    ) -> tuple[NDArray[np.uint8], BuiltCard]:
        """``(K, S, S)`` 8-bit grey frontal views of the faces, and the landmark model that
        located the points the frontalizer read.

        Each face: the card's landmark model's points, the card's square crop around the box
        in grey (BT.601 luma, as the training faces), the points relative to that crop; all
        faces of the image in as few Triton calls as the batch allows.
        """
        card = built.card
        spec = frontalization_spec(built)
        hw = card.input_hw
        assert hw is not None  # frontalization_spec checked it
        landmarker = self.landmarker(spec.landmark_model)
        if landmarks_spec(landmarker).num_points != spec.num_points:
            raise Internal("bad_card", f"{built.name} reads {spec.num_points} points")
        points = await self.locate_points(landmarker, rgb, faces)
        squares = crop_squares([f.box for f in faces], spec.crop_scale)
        crops = cut_crops(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), squares, hw)
        relative = ((points - squares[:, None, :2]) / squares[:, None, 2:3]).astype(np.float32)
        chips = await self.infer_faces(built, normalise_grey(crops, card), relative)
        if chips is None:
            return np.zeros((0, *hw), np.uint8), landmarker
        lo, hi = spec.output_range
        frontal = (chips[:, 0] - lo) / (hi - lo) * 255.0
        return np.clip(np.rint(frontal), 0, 255).astype(np.uint8), landmarker

    async def frontalize(
        self,
        *,
        data: bytes,
        model: str | None = None,
        version: int | None = None,
        detector: str | None = None,
        min_score: float | None = None,
    ) -> FrontalizeResult:
        """Every face of an image with its frontal view (detect → landmarks → frontalize);
        ``version`` is the frontalizer's."""
        built = self.frontalizer(model, version)
        frontalization_spec(built)  # a bad card fails before the image is decoded
        rgb, found = await self.detected(data, detector, min_score)
        chips, landmarker = await self.frontal_chips(built, rgb, found.faces)
        return FrontalizeResult(
            **found.detection(),
            chips=tuple(chips),
            model=built.name,
            version=built.version,
            landmark_model=(landmarker.name, landmarker.version),
        )

    async def embedding_groups(
        self,
        rgb: NDArray[np.uint8],
        faces: Sequence[FaceResult],
        align: str | None,
        frontalize: bool,
    ) -> list[tuple[NDArray[np.uint8], Sequence[FaceResult]]]:
        """What :meth:`embed_chips` aligns: the image and its faces with the five points of
        ``align`` (:meth:`alignment_faces`), or, with ``frontalize``, each face's frontal
        view (the default frontalizer's) with its card's frontal template as the points."""
        if not frontalize:
            return [(rgb, await self.alignment_faces(rgb, faces, align))]
        if align is not None and align != DETECTOR_ALIGNMENT:
            raise InvalidInput(
                "invalid_alignment",
                "frontalize=true aligns each frontal view by its frontalizer's template; "
                "send align or frontalize, not both",
            )
        built = self.frontalizer(None)
        spec = frontalization_spec(built)
        chips, _ = await self.frontal_chips(built, rgb, faces)
        side = chips.shape[1] if len(chips) else 0
        template = tuple((x * side, y * side) for x, y in spec.frontal_template)
        return [
            (np.repeat(chip[:, :, None], 3, axis=2), [FaceResult(f.box, f.score, template)])
            for chip, f in zip(chips, faces, strict=True)
        ]

    # --- verification -----------------------------------------------------------------------
    async def _largest_face(self, data: bytes, which: str) -> tuple[NDArray[np.uint8], FaceResult]:
        rgb, found = await self.detected(data, None, None)
        faces = found.faces
        if not faces:
            raise InvalidInput("no_face", f"no face was found in {which}")
        return rgb, main_face(faces, self.settings.verify_face_min_score)

    async def verify(
        self,
        *,
        data_a: bytes,
        data_b: bytes,
        model: str | None = None,
        version: int | None = None,
        threshold: float | None = None,
        align: str | None = None,
        frontalize: bool = False,
    ) -> VerifyResult:
        """Whether the largest faces of two images are the same person; ``align`` and
        ``frontalize`` as in :meth:`embedding_groups`."""
        if threshold is not None and not in_range(threshold, THRESHOLD_RANGE):
            raise InvalidInput(
                "invalid_threshold", "threshold must be a cosine similarity between -1 and 1"
            )
        built = self.embedder(model, version)
        spec = embedding_spec(built)
        limit = spec.verify_threshold if threshold is None else threshold
        if limit is None:
            raise InvalidInput(
                "no_threshold", f"{built.name} has no calibrated threshold; send `threshold`"
            )
        (rgb_a, face_a), (rgb_b, face_b) = await asyncio.gather(
            self._largest_face(data_a, "image_a"), self._largest_face(data_b, "image_b")
        )
        groups_a, groups_b = await asyncio.gather(
            self.embedding_groups(rgb_a, [face_a], align, frontalize),
            self.embedding_groups(rgb_b, [face_b], align, frontalize),
        )
        vectors = await self.embed_chips(built, [*groups_a, *groups_b])
        similarity = float(np.dot(vectors[0], vectors[1]))
        faces = [
            FaceResult(f.box, f.score, f.landmarks, tuple(float(v) for v in vec), built.name)
            for f, vec in zip((face_a, face_b), vectors, strict=True)
        ]
        return VerifyResult(
            match=similarity >= limit,
            similarity=similarity,
            threshold=float(limit),
            model=built.name,
            version=built.version,
            face_a=faces[0],
            face_b=faces[1],
        )
