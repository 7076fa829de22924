"""POST /v1/translate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from gantry.serving.translate import Conditioning
from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import FormatField, FormInt, ImageFile, VersionField, strict_form
from gateway.responses import IMAGE_RESPONSES, model_headers
from gateway.uploads import read_upload

router = APIRouter(prefix="/v1", tags=["translate"], dependencies=[Depends(strict_form)])

TranslateModelField = Annotated[
    str | None,
    Form(
        description="an image_to_image model of /v1/models; GANTRY_DEFAULT_TRANSLATE_MODEL "
        "(cyclegan-vintagify) if absent"
    ),
]
DomainField = Annotated[
    str | None, Form(description="the target domain of a multi-domain model (StarGAN v2)")
]
ReferenceFile = Annotated[
    UploadFile | None,
    File(description="an image whose style a multi-domain model takes (or send a seed)"),
]
SeedField = Annotated[
    FormInt | None,
    Form(ge=0, le=2**32 - 1, description="draws a random style for a multi-domain model"),
]


@router.post(
    "/translate",
    response_class=Response,
    responses={200: IMAGE_RESPONSES, **errors(400, 404, 413, 415, 422, 502, 503)},
)
async def translate(
    state: StateDep,
    image: ImageFile,
    model: TranslateModelField = None,
    version: VersionField = None,
    domain: DomainField = None,
    reference: ReferenceFile = None,
    seed: SeedField = None,
    format: FormatField = "png",
) -> Response:
    """Translate an image into another domain (a label map to a photo, a photo to a vintage
    look); the response is the image, the same size as the input, with the model in headers."""
    limit = state.settings.max_upload_bytes
    data = await read_upload(image, limit)
    style = None
    if reference is not None:
        style = await read_upload(reference, limit, what="the reference image")
    result = await state.pipelines.translate.run(
        data=data,
        model=model,
        version=version,
        conditioning=Conditioning(domain=domain, reference=style, seed=seed),
        fmt=format,
    )
    return Response(
        content=result.data,
        media_type=result.content_type,
        headers=model_headers(result.model, result.version),
    )
