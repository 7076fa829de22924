"""POST /v1/superres."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import (
    FormatField,
    ImageFile,
    ModelField,
    TileField,
    VersionField,
    strict_form,
)
from gateway.responses import IMAGE_RESPONSES, model_headers
from gateway.uploads import read_upload

router = APIRouter(prefix="/v1", tags=["superres"], dependencies=[Depends(strict_form)])


@router.post(
    "/superres",
    response_class=Response,
    responses={200: IMAGE_RESPONSES, **errors(400, 404, 413, 415, 422, 502, 503)},
)
async def superres(
    state: StateDep,
    image: ImageFile,
    model: ModelField = None,
    version: VersionField = None,
    tile: TileField = None,
    format: FormatField = "png",
) -> Response:
    """Upscale an image; the response is the image, with the model and scale in headers."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.pipelines.superres.run(
        data=data, model=model, version=version, tile=tile, fmt=format
    )
    return Response(
        content=result.data,
        media_type=result.content_type,
        headers={
            **model_headers(result.model, result.version),
            "X-Gantry-Scale": str(result.scale),
            "X-Gantry-Tiles": str(result.tiles),
        },
    )
