"""POST /v1/inpaint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import FormatField, ImageFile, TileField, VersionField, strict_form
from gateway.responses import IMAGE_RESPONSES, model_headers
from gateway.uploads import read_upload

router = APIRouter(prefix="/v1", tags=["inpaint"], dependencies=[Depends(strict_form)])

InpaintModelField = Annotated[
    str | None,
    Form(
        description="an inpaint model of /v1/models (glcic-photos, research only); "
        "GANTRY_DEFAULT_INPAINT_MODEL if absent (none by default)"
    ),
]
MaskFile = Annotated[
    UploadFile,
    File(
        description="the hole to fill: an image of the photo's size, white = fill, black = "
        "keep, nothing else (a binary PNG; its alpha is ignored)"
    ),
]


@router.post(
    "/inpaint",
    response_class=Response,
    responses={200: IMAGE_RESPONSES, **errors(400, 404, 413, 415, 422, 502, 503)},
)
async def inpaint(
    state: StateDep,
    image: ImageFile,
    mask: MaskFile,
    model: InpaintModelField = None,
    version: VersionField = None,
    tile: TileField = None,
    format: FormatField = "png",
) -> Response:
    """Fill the white part of the mask; the response is the image, the same size as the input,
    unchanged outside the hole, with the model and the tile count in headers."""
    limit = state.settings.max_upload_bytes
    data = await read_upload(image, limit)
    mask_data = await read_upload(mask, limit)
    result = await state.pipelines.inpaint.run(
        data=data, mask=mask_data, model=model, version=version, tile=tile, fmt=format
    )
    return Response(
        content=result.data,
        media_type=result.content_type,
        headers={
            **model_headers(result.model, result.version),
            "X-Gantry-Tiles": str(result.tiles),
        },
    )
