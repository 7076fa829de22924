"""Reading uploaded files within a limit: the one upload check of every endpoint."""

from __future__ import annotations

from fastapi import UploadFile

from gantry.core.errors import InvalidInput, TooLarge


async def read_upload(upload: UploadFile, limit: int, *, what: str = "the image file") -> bytes:
    """The uploaded bytes; TooLarge as soon as more than ``limit`` arrive, InvalidInput if empty."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge("upload_too_large", f"the upload exceeds the limit of {limit} bytes")
    if not data:
        raise InvalidInput("empty_upload", f"{what} is empty")
    return data
