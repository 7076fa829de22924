"""Form fields several routes share."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import File, Form, Request, UploadFile
from pydantic import BeforeValidator

from gantry.core.errors import InvalidInput

_INTEGER = re.compile(r"[+-]?\d{1,18}")


def _integer_text(value: Any) -> Any:
    """A form integer is digits: "2", not "2.0" or "2e0" (pydantic's lax parsing takes those)."""
    if isinstance(value, str) and not _INTEGER.fullmatch(value.strip()):
        raise ValueError("an integer is written in digits")
    return value


FormInt = Annotated[int, BeforeValidator(_integer_text)]
ImageFile = Annotated[UploadFile, File(description="a photo (PNG, JPEG, WebP, BMP or TIFF)")]
ModelField = Annotated[str | None, Form(description="a model of /v1/models; default if absent")]
VersionField = Annotated[
    FormInt | None, Form(ge=1, description="the model version; its promoted version if absent")
]
TileField = Annotated[FormInt | None, Form(description="tile size in input pixels; 0 = whole")]
DetectorField = Annotated[str | None, Form(description="retinaface (default) or mtcnn")]
FormatField = Annotated[Literal["png", "jpeg", "webp"], Form(description="the output format")]


async def strict_form(request: Request) -> None:
    """Refuse form fields the endpoint does not have (``modle=``) and fields sent empty
    (``-F tile=``): FastAPI would ignore the first and read the second as absent, so a typo
    would silently become the default. (Starlette caches the parsed form for the handler.)
    URL-encoded forms too: an endpoint without a file (POST /v1/generate) may be sent one."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return
    form = await request.form()
    route = request.scope.get("route")
    known = {p.alias for p in getattr(getattr(route, "dependant", None), "body_params", [])}
    unknown = sorted({key for key in form if known and key not in known})
    if unknown:
        raise InvalidInput(
            "invalid_request",
            f"{', '.join(unknown)}: no such field (fields: {', '.join(sorted(known))})",
        )
    empty = sorted({key for key, value in form.multi_items() if value == ""})
    if empty:
        raise InvalidInput(
            "invalid_request",
            f"{', '.join(empty)}: empty value (leave a field out for its default)",
        )
