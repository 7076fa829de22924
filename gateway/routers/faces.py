"""POST /v1/faces/detect, /embed, /verify, /landmarks and /frontalize."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response

from gantry.core.imaging import grey_png
from gantry.serving.faces.service import DETECTOR_ALIGNMENT, MIN_SCORE_RANGE, THRESHOLD_RANGE
from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import (
    DetectorField,
    ImageFile,
    ModelField,
    VersionField,
    strict_form,
)
from gateway.responses import MODEL_HEADERS, model_headers
from gateway.schemas import (
    Detections,
    EmbeddedFace,
    Embeddings,
    Face,
    FrontalFace,
    Frontalizations,
    LandmarkedFace,
    Landmarks,
    ModelRef,
    Verification,
)
from gateway.uploads import read_upload

router = APIRouter(prefix="/v1/faces", tags=["faces"], dependencies=[Depends(strict_form)])

MinScoreField = Annotated[
    float | None, Form(ge=MIN_SCORE_RANGE[0], le=MIN_SCORE_RANGE[1], description="0 to 1")
]
AlignField = Annotated[
    str | None,
    Form(
        description=f"the five points chips are aligned by: {DETECTOR_ALIGNMENT} (the "
        "detector's, the default) or a landmark model of /v1/models (e.g. pfld-300w): its eye "
        "centres, nose tip and mouth corners"
    ),
]
FrontalizeField = Annotated[
    bool,
    Form(
        description="embed each face's frontal view (detect → landmarks → the default "
        "frontalizer), aligned by its frontal template, instead of the face itself"
    ),
]
RESPONSES = {200: {"headers": MODEL_HEADERS}, **errors(400, 404, 413, 415, 422, 502, 503)}


@router.post("/detect", responses=RESPONSES)
async def detect(
    state: StateDep,
    response: Response,
    image: ImageFile,
    detector: DetectorField = None,
    min_score: MinScoreField = None,
    version: VersionField = None,
) -> Detections:
    """Faces with boxes, scores and 5 landmarks, in input pixels; ``version`` is the
    detector's model version."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.pipelines.faces.detect(
        data=data, detector=detector, min_score=min_score, version=version
    )
    response.headers.update(
        model_headers(
            ",".join(name for name, _ in result.models), ",".join(str(v) for _, v in result.models)
        )
    )
    return Detections(
        width=result.width,
        height=result.height,
        faces=[Face.of(f) for f in result.faces],
        detector=result.detector,
        models=[ModelRef(name=n, version=v) for n, v in result.models],
    )


@router.post("/embed", responses=RESPONSES)
async def embed(
    state: StateDep,
    response: Response,
    image: ImageFile,
    model: ModelField = None,
    version: VersionField = None,
    detector: DetectorField = None,
    align: AlignField = None,
    frontalize: FrontalizeField = False,
) -> Embeddings:
    """As detect, each face with an L2-normalised embedding."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.pipelines.faces.embed(
        data=data,
        model=model,
        version=version,
        detector=detector,
        align=align,
        frontalize=frontalize,
    )
    response.headers.update(model_headers(result.model, result.version))
    return Embeddings(
        width=result.width,
        height=result.height,
        faces=[EmbeddedFace.of(f) for f in result.faces],
        model=result.model,
        version=result.version,
        detector=result.detector,
    )


@router.post("/landmarks", responses=RESPONSES)
async def landmarks(
    state: StateDep,
    response: Response,
    image: ImageFile,
    model: ModelField = None,
    version: VersionField = None,
    detector: DetectorField = None,
    min_score: MinScoreField = None,
) -> Landmarks:
    """As detect, each face with the landmark model's points (68 for the iBUG scheme) in
    input pixels; ``version`` is the landmark model's."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.pipelines.faces.landmarks(
        data=data, model=model, version=version, detector=detector, min_score=min_score
    )
    response.headers.update(model_headers(result.model, result.version))
    return Landmarks(
        width=result.width,
        height=result.height,
        faces=[LandmarkedFace.of(f) for f in result.faces],
        model=result.model,
        version=result.version,
        scheme=result.scheme,
        detector=result.detector,
        models=[ModelRef(name=n, version=v) for n, v in result.models],
    )


@router.post("/frontalize", responses=RESPONSES)
async def frontalize(
    state: StateDep,
    response: Response,
    image: ImageFile,
    model: ModelField = None,
    version: VersionField = None,
    detector: DetectorField = None,
    min_score: MinScoreField = None,
) -> Frontalizations:
    """As detect, each face with its frontal view (detect → landmarks → frontalize), a
    square grey PNG; ``version`` is the frontalizer's."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.pipelines.faces.frontalize(
        data=data, model=model, version=version, detector=detector, min_score=min_score
    )
    response.headers.update(model_headers(result.model, result.version))
    faces = [f.rounded() for f in result.faces]
    name, landmark_version = result.landmark_model
    return Frontalizations(
        width=result.width,
        height=result.height,
        faces=[
            FrontalFace(box=f.box, score=f.score, image=base64.b64encode(grey_png(chip)).decode())
            for f, chip in zip(faces, result.chips, strict=True)
        ],
        model=result.model,
        version=result.version,
        landmark_model=ModelRef(name=name, version=landmark_version),
        detector=result.detector,
        models=[ModelRef(name=n, version=v) for n, v in result.models],
    )


@router.post("/verify", responses=RESPONSES)
async def verify(
    state: StateDep,
    response: Response,
    image_a: ImageFile,
    image_b: ImageFile,
    model: ModelField = None,
    version: VersionField = None,
    threshold: Annotated[float | None, Form(ge=THRESHOLD_RANGE[0], le=THRESHOLD_RANGE[1])] = None,
    align: AlignField = None,
    frontalize: FrontalizeField = False,
) -> Verification:
    """Whether the largest face of each image is the same person; 422 `no_face` if none."""
    limit = state.settings.max_upload_bytes
    data_a, data_b = await read_upload(image_a, limit), await read_upload(image_b, limit)
    result = await state.pipelines.faces.verify(
        data_a=data_a,
        data_b=data_b,
        model=model,
        version=version,
        threshold=threshold,
        align=align,
        frontalize=frontalize,
    )
    response.headers.update(model_headers(result.model, result.version))
    return Verification(
        match=result.match,
        similarity=result.similarity,
        threshold=result.threshold,
        model=result.model,
        version=result.version,
        face_a=EmbeddedFace.of(result.face_a),
        face_b=EmbeddedFace.of(result.face_b),
    )
