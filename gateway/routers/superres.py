"""POST /v1/superres."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from gateway.deps import StateDep
from gateway.errors import GantryError

router = APIRouter(prefix="/v1", tags=["superres"])


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The uploaded bytes; 413 as soon as more than ``limit`` arrive."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise GantryError(413, "upload_too_large", f"the upload exceeds the limit of {limit} bytes")
    if not data:
        raise GantryError(422, "empty_upload", "the image file is empty")
    return data


@router.post(
    "/superres",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
)
async def superres(
    state: StateDep,
    image: Annotated[UploadFile, File(description="the image to upscale")],
    model: Annotated[str | None, Form(description="a superres model; default if absent")] = None,
    tile: Annotated[int | None, Form(description="tile size in input pixels; 0 = whole")] = None,
    format: Annotated[Literal["png", "jpeg", "webp"], Form()] = "png",
) -> Response:
    """Upscale an image; the response is the image, with the model and scale in headers."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.superres.upscale(data=data, model=model, tile=tile, fmt=format)
    return Response(
        content=result.data,
        media_type=result.content_type,
        headers={
            "X-Gantry-Model": result.model,
            "X-Gantry-Scale": str(result.scale),
            "X-Gantry-Tiles": str(result.tiles),
        },
    )
