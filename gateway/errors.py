"""The one error body of the public API, ``{"error": {"code", "message"}}``, and the HTTP
status of each error kind. Below the gateway errors have kinds, not status codes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from gantry.core.errors import ErrorKind, GantryError

HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_INPUT: 422,
    ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.GONE: 410,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.UPSTREAM_FAILED: 502,
    ErrorKind.INTERNAL: 500,
}

# Framework errors (routing, method) get a machine code too.
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

ERROR_DESCRIPTIONS = {
    400: "The body is not well-formed (multipart or JSON)",
    401: "No API key, or an unknown or revoked one (GANTRY_AUTH_MODE=keys)",
    403: "The API key lacks the scope of this endpoint",
    404: "No such resource, model version or job",
    409: "The job has no result yet",
    410: "The result was deleted after the retention period",
    413: "Over a size, pixel or compute limit",
    415: "Not a PNG, JPEG, WebP, BMP or TIFF image",
    408: "The request's headers or body did not arrive in time",
    422: "Invalid request: bad field, unknown model, corrupt image, no face, ...",
    429: "Over the API key's rate; Retry-After says when to try again",
    502: "Triton answered with an error",
    503: "Overloaded (Retry-After says when to try again), or Triton or the job queue did not "
    "answer",
}


class ErrorDetail(BaseModel):
    """What went wrong."""

    code: str = Field(description="a machine code, e.g. no_face, unknown_model")
    message: str = Field(description="a sentence for a person")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON error body of CONTRACT.md."""
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(code, message), headers=headers)


def retry_headers(error: GantryError) -> dict[str, str] | None:
    """``Retry-After`` (whole seconds, at least 1) for an error that says when to retry."""
    if error.retry_after_s is None:
        return None
    return {"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}


def gantry_error_response(error: GantryError) -> JSONResponse:
    """The response of an error kind: its status, the body, Retry-After when known."""
    return error_response(
        http_status(error), error.code, error.message, headers=retry_headers(error)
    )


def http_status(error: GantryError) -> int:
    """The HTTP status of an error kind."""
    return HTTP_STATUS[error.kind]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting error statuses with the error body."""
    return {
        s: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS.get(s, "Error")} for s in statuses
    }


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, ours or the framework's, use the contract's body."""

    @app.exception_handler(GantryError)
    async def _gantry(_: Request, exc: GantryError) -> JSONResponse:
        return gantry_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        # Keep the framework's headers: a 405 names the allowed methods in `Allow`.
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")
