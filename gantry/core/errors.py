"""Errors a client can act on, by *kind* rather than by transport status.

Below the front doors nothing speaks HTTP: a pipeline raises, say, ``InvalidInput`` and the
gateway answers 422, the gRPC server INVALID_ARGUMENT, and a job fails with the same code and
message. Only ``Unavailable`` is transient: a job that meets it goes back to the queue.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """What went wrong, from the client's point of view."""

    INVALID_INPUT = "invalid_input"  # the request can never succeed as sent
    UNSUPPORTED_MEDIA = "unsupported_media"  # the upload is not a format we read
    TOO_LARGE = "too_large"  # over a size, pixel or compute limit
    UNAUTHENTICATED = "unauthenticated"  # no credentials, or unknown or revoked ones
    FORBIDDEN = "forbidden"  # valid credentials without the right scope
    RATE_LIMITED = "rate_limited"  # over the caller's rate: retry after `retry_after_s`
    NOT_FOUND = "not_found"  # no such job, model version, ...
    CONFLICT = "conflict"  # the resource is not in a state that allows this yet
    GONE = "gone"  # it existed and was deleted (expired results)
    UNAVAILABLE = "unavailable"  # a server we need did not answer, or we are full: retry later
    UPSTREAM_FAILED = "upstream_failed"  # a server we need answered with an error
    INTERNAL = "internal"  # a bug or a broken deployment


class GantryError(Exception):
    """An error with a kind, a machine code (``no_face``) and a sentence for a person."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s  # when the same request is worth sending again

    @property
    def transient(self) -> bool:
        """Whether the same request may succeed later without change."""
        return self.kind is ErrorKind.UNAVAILABLE

    def as_dict(self) -> dict[str, str]:
        """``{"code", "message"}``: the error body's inner object, also a failed job's error."""
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidInput(GantryError):
    kind = ErrorKind.INVALID_INPUT


class UnsupportedMedia(GantryError):
    kind = ErrorKind.UNSUPPORTED_MEDIA


class TooLarge(GantryError):
    kind = ErrorKind.TOO_LARGE


class Unauthenticated(GantryError):
    kind = ErrorKind.UNAUTHENTICATED


class Forbidden(GantryError):
    kind = ErrorKind.FORBIDDEN


class RateLimited(GantryError):
    kind = ErrorKind.RATE_LIMITED


class NotFound(GantryError):
    kind = ErrorKind.NOT_FOUND


class Conflict(GantryError):
    kind = ErrorKind.CONFLICT


class Gone(GantryError):
    kind = ErrorKind.GONE


class Unavailable(GantryError):
    kind = ErrorKind.UNAVAILABLE


class UpstreamFailed(GantryError):
    kind = ErrorKind.UPSTREAM_FAILED


class Internal(GantryError):
    kind = ErrorKind.INTERNAL
