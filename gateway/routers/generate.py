"""POST /v1/generate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from gateway.deps import StateDep
from gateway.errors import errors
from gateway.fields import FormatField, FormInt, VersionField, strict_form
from gateway.responses import MODEL_HEADERS, binary_content, model_headers

router = APIRouter(prefix="/v1", tags=["generate"], dependencies=[Depends(strict_form)])

GenerateModelField = Annotated[
    str | None,
    Form(
        description="a generation model of /v1/models (progan-celeba); "
        "GANTRY_DEFAULT_GENERATE_MODEL if absent (none by default: the only generator is "
        "trained on CelebA, research only)"
    ),
]
SeedField = Annotated[
    FormInt | None,
    Form(
        description="fixes the latents (numpy PCG64 standard normals): the same seed, count "
        "and model version give the same bytes; 0 to 2**53 - 1; random (and returned in "
        "X-Gantry-Seed) if absent"
    ),
]
CountField = Annotated[
    FormInt,
    Form(description="images to generate: one is answered as an image, more as a zip"),
]

GENERATE_RESPONSES = {
    "content": binary_content("image/png", "image/jpeg", "image/webp", "application/zip"),
    "description": "the image (count 1) or a zip of images seed-<seed>-<i>.<format>",
    "headers": {
        **MODEL_HEADERS,
        "X-Gantry-Seed": {"schema": {"type": "string"}, "description": "the seed used"},
        "X-Gantry-Count": {"schema": {"type": "string"}, "description": "images made"},
    },
}


@router.post(
    "/generate",
    response_class=Response,
    responses={200: GENERATE_RESPONSES, **errors(400, 404, 413, 422, 502, 503)},
)
async def generate(
    state: StateDep,
    model: GenerateModelField = None,
    version: VersionField = None,
    seed: SeedField = None,
    count: CountField = 1,
    format: FormatField = "png",
) -> Response:
    """Generate images from a seed with an unconditional generator (a face for each
    latent), at the model's resolution (32x32 for progan-celeba)."""
    result = await state.pipelines.generate.run(
        model=model, version=version, seed=seed, count=count, fmt=format
    )
    headers = model_headers(result.model, result.version)
    headers |= {"X-Gantry-Seed": str(result.seed), "X-Gantry-Count": str(result.count)}
    return Response(content=result.data, media_type=result.content_type, headers=headers)
