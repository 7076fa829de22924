"""POST /v1/faces/detect, /v1/faces/embed, /v1/faces/verify."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from gateway.deps import StateDep
from gateway.routers.superres import read_upload

router = APIRouter(prefix="/v1/faces", tags=["faces"])

ImageFile = Annotated[UploadFile, File(description="a photo (PNG, JPEG, WebP, BMP, TIFF)")]


@router.post("/detect")
async def detect(
    state: StateDep,
    image: ImageFile,
    detector: Annotated[str | None, Form(description="retinaface (default) or mtcnn")] = None,
    min_score: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
) -> dict[str, Any]:
    """Faces with boxes, scores and 5 landmarks, in input pixels."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.faces.detect(data=data, detector=detector, min_score=min_score)
    return {
        "width": result.width,
        "height": result.height,
        "faces": [f.as_dict() for f in result.faces],
    }


@router.post("/embed")
async def embed(
    state: StateDep,
    image: ImageFile,
    model: Annotated[str | None, Form(description="an embedding model")] = None,
    detector: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """As detect, each face with an L2-normalised embedding."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.faces.embed(data=data, model=model, detector=detector)
    return {
        "width": result.width,
        "height": result.height,
        "model": result.model,
        "faces": [f.as_dict() for f in result.faces],
    }


@router.post("/verify")
async def verify(
    state: StateDep,
    image_a: ImageFile,
    image_b: ImageFile,
    model: Annotated[str | None, Form()] = None,
    threshold: Annotated[float | None, Form(ge=-1.0, le=1.0)] = None,
) -> dict[str, Any]:
    """Whether the largest face of each image is the same person; 422 `no_face` if none."""
    limit = state.settings.max_upload_bytes
    data_a, data_b = await read_upload(image_a, limit), await read_upload(image_b, limit)
    result = await state.faces.verify(
        data_a=data_a, data_b=data_b, model=model, threshold=threshold
    )
    return {
        "match": result.match,
        "similarity": result.similarity,
        "threshold": result.threshold,
        "model": result.model,
        "face_a": result.face_a.as_dict(),
        "face_b": result.face_b.as_dict(),
    }
