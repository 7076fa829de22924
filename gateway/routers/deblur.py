"""POST /v1/deblur."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import FormatField, ImageFile, TileField, VersionField, strict_form
from gateway.responses import IMAGE_RESPONSES, model_headers
from gateway.uploads import read_upload

router = APIRouter(prefix="/v1", tags=["deblur"], dependencies=[Depends(strict_form)])

DeblurModelField = Annotated[
    str | None,
    Form(
        description="a deblur model of /v1/models (deblurgan-photos, research only); "
        "GANTRY_DEFAULT_DEBLUR_MODEL if absent (none by default)"
    ),
]


@router.post(
    "/deblur",
    response_class=Response,
    responses={200: IMAGE_RESPONSES, **errors(400, 404, 413, 415, 422, 502, 503)},
)
async def deblur(
    state: StateDep,
    image: ImageFile,
    model: DeblurModelField = None,
    version: VersionField = None,
    tile: TileField = None,
    format: FormatField = "png",
) -> Response:
    """Remove camera-shake blur from a photo; the response is the image, the same size as the
    input, with the model and the tile count in headers."""
    data = await read_upload(image, state.settings.max_upload_bytes)
    result = await state.pipelines.deblur.run(
        data=data, model=model, version=version, tile=tile, fmt=format
    )
    return Response(
        content=result.data,
        media_type=result.content_type,
        headers={
            **model_headers(result.model, result.version),
            "X-Gantry-Tiles": str(result.tiles),
        },
    )
