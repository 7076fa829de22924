"""The HTTP server protocol of the gateway: uvicorn's h11 with a deadline for headers.

uvicorn waits for a request's headers as long as the client likes, so a client that opens
connections and sends half a request line holds them forever. :class:`GuardedH11Protocol`
gives every request (the first on a connection and each keep-alive one) ``GANTRY_HEADER_
TIMEOUT_S`` to finish its headers, then answers 408 and closes. Bodies are timed by the front
door (``gateway.frontdoor``), connections bounded by uvicorn's ``--limit-concurrency``.
Run with ``uvicorn --http gateway.server:GuardedH11Protocol``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from gantry.core.settings import get_settings
from gateway.errors import error_body

PROTOCOL = "gateway.server:GuardedH11Protocol"


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps(
        error_body("request_timeout", f"the request headers did not arrive within {seconds:g} s")
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """h11 with a header deadline per request (see the module docstring)."""

    # The settings' GANTRY_HEADER_TIMEOUT_S unless a subclass fixes it (see :func:`guarded`).
    header_timeout_s: float = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.header_timeout_s:
            self.header_timeout_s = get_settings().header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None
        self._cycle_seen: object = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._cycle_seen:
            self._cycle_seen = self.cycle  # a new request's headers arrived in time
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this keep-alive connection

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # headers done; the body is the front door's to time
        if self.conn.our_state is h11.IDLE:  # nothing answered on this cycle yet
            self.transport.write(_timeout_response(self.header_timeout_s))
        self.transport.close()


def guarded(header_timeout_s: float) -> type[GuardedH11Protocol]:
    """The protocol with a given header deadline (for servers started in-process)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": header_timeout_s})
