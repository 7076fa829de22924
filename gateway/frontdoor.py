"""The gateway's front door: one ASGI middleware that every HTTP request passes, in order:

1. ``HEAD`` is served as ``GET`` without the body.
2. API keys (``GANTRY_AUTH_MODE=keys``): 401, 403 or 429 before any body is read.
3. The body limit of the endpoint (``Content-Length`` first, then every byte as it streams
   in, whatever the framing, chunked included): 413 as soon as it is passed.
4. The body deadline (``GANTRY_BODY_TIMEOUT_S`` from the headers): 408 for a body that
   trickles in.
5. Admission control for heavy endpoints (``gateway.admission``): 503 ``overloaded``.

A refused request is answered by the middleware itself, with the contract's error body; the
app then sees a disconnected client and whatever it sends is dropped. (Request *headers*
that never finish are the HTTP server's job: ``gateway.server``.)
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gantry.core.errors import GantryError, TooLarge
from gantry.core.settings import Settings
from gateway.admission import Admission
from gateway.auth.guard import Authenticator, key_from_headers
from gateway.errors import error_body, http_status, retry_headers
from gateway.metrics import REQUEST_LATENCY, REQUESTS

# Multipart framing around the files of a request.
MULTIPART_SLACK = 64 * 1024
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"})
ANY_KEY = "any"


@dataclass(frozen=True)
class RoutePolicy:
    """What the front door enforces for one request."""

    scope: str | None  # the API key scope it needs; ANY_KEY: any valid key; None: open
    family: str | None  # its admission family, for heavy endpoints
    body_limit: int  # bytes


def route_policy(method: str, path: str, settings: Settings) -> RoutePolicy:
    """The policy of a request, from the one table of endpoints and their limits."""
    upload = settings.max_upload_bytes + MULTIPART_SLACK
    if path in OPEN_PATHS or path.startswith("/docs/"):
        return RoutePolicy(None, None, upload)
    if path.startswith("/v1/faces/"):
        pair = path.endswith("/verify")  # two images
        limit = 2 * settings.max_upload_bytes + MULTIPART_SLACK if pair else upload
        return RoutePolicy("faces", "faces" if method == "POST" else None, limit)
    if path == "/v1/superres":
        return RoutePolicy("superres", "superres" if method == "POST" else None, upload)
    if path == "/v1/deblur":  # a same-size image-to-image model, as translations are
        return RoutePolicy("translate", "translate" if method == "POST" else None, upload)
    if path == "/v1/generate":  # no upload: a few form fields, answered by an image model
        return RoutePolicy("translate", "translate" if method == "POST" else None, upload)
    if path in ("/v1/translate", "/v1/edit", "/v1/inpaint"):  # the image and a second image
        limit = 2 * settings.max_upload_bytes + MULTIPART_SLACK
        return RoutePolicy("translate", "translate" if method == "POST" else None, limit)
    if path == "/v1/inputs":
        return RoutePolicy("jobs", None, settings.max_job_input_bytes + MULTIPART_SLACK)
    if path.startswith("/v1/jobs"):
        return RoutePolicy("jobs", None, upload)
    if path == "/metrics":
        return RoutePolicy("admin", None, upload)
    return RoutePolicy(ANY_KEY, None, upload)


class _RefusedError(Exception):
    """Raised inside the app's receive once the middleware has answered for it."""


class FrontDoor:
    """See the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        admission: Admission,
        authenticator: Authenticator | None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.admission = admission
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(self, scope, receive, send)
        await request.run()


class _Request:
    """One HTTP request through the front door."""

    def __init__(self, door: FrontDoor, scope: Scope, receive: Receive, send: Send) -> None:
        self.door = door
        self.settings = door.settings
        self.head = scope["method"] == "HEAD"
        self.scope = dict(scope, method="GET") if self.head else scope
        self._receive = receive
        self._send = send
        self.policy = route_policy(self.scope["method"], scope["path"], self.settings)
        self.started = False  # a response has begun
        self.answered = False  # the middleware answered; drop what the app sends
        self.status = 500
        self.received = 0
        self.deadline = time.monotonic() + self.settings.body_timeout_s

    async def run(self) -> None:
        start = time.perf_counter()
        try:
            await self._authenticate_and_measure()
            async with AsyncExitStack() as stack:
                if self.policy.family is not None:
                    await stack.enter_async_context(self.door.admission.slot(self.policy.family))
                await self.door.app(self.scope, self.receive, self.send)
        except _RefusedError:
            pass
        except GantryError as error:
            await self.answer(http_status(error), error.code, error.message, retry_headers(error))
        finally:
            route = getattr(self.scope.get("route"), "path", "unmatched")
            REQUESTS.labels(route=route, status=str(self.status)).inc()
            REQUEST_LATENCY.labels(route=route).observe(time.perf_counter() - start)

    async def _authenticate_and_measure(self) -> None:
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]
        }
        authenticator = self.door.authenticator
        if authenticator is not None and self.policy.scope is not None:
            scope = None if self.policy.scope == ANY_KEY else self.policy.scope
            await asyncio.to_thread(authenticator.check, key_from_headers(headers), scope)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.policy.body_limit:
            raise self._too_large()

    def _too_large(self) -> TooLarge:
        limit = self.policy.body_limit
        return TooLarge("upload_too_large", f"the request body exceeds the limit of {limit} bytes")

    async def answer(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send an error response now, unless the app already began one."""
        if self.started:
            return
        self.answered = True
        body = json.dumps(error_body(code, message)).encode()
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        self.status = status
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await self._send({"type": "http.response.body", "body": b"" if self.head else body})

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        remaining = self.deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(self._receive(), max(remaining, 0.0))
        except TimeoutError:
            await self.answer(
                408,
                "request_timeout",
                f"the request body did not arrive within {self.settings.body_timeout_s:.0f} s",
            )
            raise _RefusedError from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.policy.body_limit:
                error = self._too_large()
                await self.answer(413, error.code, error.message)
                raise _RefusedError
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and self.head:
            message = {**message, "body": b""}
        await self._send(message)
