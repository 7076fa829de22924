"""Form fields several routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import File, Form, UploadFile

ImageFile = Annotated[UploadFile, File(description="a photo (PNG, JPEG, WebP, BMP or TIFF)")]
ModelField = Annotated[str | None, Form(description="a model of /v1/models; default if absent")]
VersionField = Annotated[
    int | None, Form(ge=1, description="the model version; its promoted version if absent")
]
DetectorField = Annotated[str | None, Form(description="retinaface (default) or mtcnn")]
