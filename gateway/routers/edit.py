"""POST /v1/edit."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import Response

from gantry.core.errors import InvalidInput
from gantry.serving.edit import Edit
from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import FormatField, ImageFile, VersionField, strict_form
from gateway.responses import IMAGE_RESPONSES, model_headers
from gateway.uploads import read_upload

router = APIRouter(prefix="/v1", tags=["edit"], dependencies=[Depends(strict_form)])

EditModelField = Annotated[
    str | None,
    Form(
        description="a face_edit model of /v1/models (stargan-celeba, ...); "
        "GANTRY_DEFAULT_EDIT_MODEL if absent (none by default: every face-editing model is "
        "trained on CelebA, research only)"
    ),
]
AttributesField = Annotated[
    str | None,
    Form(
        description="a JSON object of attributes to set (true) or clear (false), e.g. "
        '{"Blond_Hair": true}; the face keeps the others (attribute models)',
        examples=['{"Blond_Hair": true, "Young": false}'],
    ),
]
DonorFile = Annotated[
    UploadFile | None,
    File(description="a second face whose attribute the first takes (donor models: GeneGAN)"),
]


def parse_attributes(text: str | None) -> dict[str, bool] | None:
    """The ``attributes`` field: a JSON object of names to booleans.

    Raises:
        InvalidInput: ``invalid_edit`` for anything else.
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput("invalid_edit", f"attributes is not JSON: {exc.msg}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
        raise InvalidInput(
            "invalid_edit",
            "attributes must be a JSON object of attribute names to true or false, "
            'e.g. {"Blond_Hair": true}',
        )
    return value


@router.post(
    "/edit",
    response_class=Response,
    responses={200: IMAGE_RESPONSES, **errors(400, 404, 413, 415, 422, 502, 503)},
)
async def edit(
    state: StateDep,
    image: ImageFile,
    model: EditModelField = None,
    version: VersionField = None,
    attributes: AttributesField = None,
    donor: DonorFile = None,
    format: FormatField = "png",
) -> Response:
    """Edit an aligned face (as CelebA's): set or clear attributes, or take a donor face's
    attribute. The face is the photo's centre square; the response is the edited face at the
    model's size (64x64 for the models trained here), with the model in headers."""
    limit = state.settings.max_upload_bytes
    data = await read_upload(image, limit)
    donor_data = None
    if donor is not None:
        donor_data = await read_upload(donor, limit, what="the donor image")
    result = await state.pipelines.edit.run(
        data=data,
        model=model,
        version=version,
        edit=Edit(attributes=parse_attributes(attributes), donor=donor_data),
        fmt=format,
    )
    return Response(
        content=result.data,
        media_type=result.content_type,
        headers=model_headers(result.model, result.version),
    )
