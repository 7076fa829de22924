"""Admission control: a bounded number of heavy requests in flight per model family.

Past the limit a request waits in a short queue; past the queue (or after waiting too long)
it is refused at once with 503 ``overloaded`` and a ``Retry-After`` estimated from how long
requests of that family take, instead of piling up decoded images and tile batches until
the gateway runs out of memory. REST and gRPC requests share the same gates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from gantry.core.errors import Unavailable
from gantry.core.settings import Settings

IN_FLIGHT = Gauge("gantry_admission_in_flight", "Heavy requests running", ["family"])
QUEUED = Gauge("gantry_admission_queued", "Heavy requests waiting for a slot", ["family"])
REFUSED = Counter("gantry_admission_refused_total", "Requests refused as overloaded", ["family"])


@dataclass
class _Gate:
    limit: int
    semaphore: asyncio.Semaphore
    waiting: int = 0
    seconds: float = field(default=1.0)  # running average of a request's duration


class Admission:
    """The gates of every family, created on the event loop that uses them."""

    def __init__(self, limits: dict[str, int], *, max_queued: int, queue_timeout_s: float) -> None:
        self.limits = limits
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self._gates: dict[str, _Gate] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            {
                "superres": settings.max_inflight_superres,
                "translate": settings.max_inflight_translate,
                "faces": settings.max_inflight_faces,
            },
            max_queued=settings.max_queued_requests,
            queue_timeout_s=settings.queue_timeout_s,
        )

    def _gate(self, family: str) -> _Gate:
        gate = self._gates.get(family)
        if gate is None:
            limit = max(1, self.limits[family])
            gate = self._gates[family] = _Gate(limit, asyncio.Semaphore(limit))
        return gate

    def _overloaded(self, family: str, gate: _Gate) -> Unavailable:
        REFUSED.labels(family=family).inc()
        # Everyone ahead of a retry, running or queued, at the average duration per slot.
        retry = gate.seconds * (1 + (gate.waiting + gate.limit) / gate.limit)
        return Unavailable(
            "overloaded",
            f"{gate.limit} {family} requests are running and {gate.waiting} waiting; retry later",
            retry_after_s=retry,
        )

    @asynccontextmanager
    async def slot(self, family: str) -> AsyncIterator[None]:
        """Hold one of ``family``'s slots for the duration of a request.

        Raises:
            Unavailable: ``overloaded``, when the queue is full or the wait times out.
        """
        gate = self._gate(family)
        if gate.semaphore.locked():
            if gate.waiting >= self.max_queued:
                raise self._overloaded(family, gate)
            gate.waiting += 1
            QUEUED.labels(family=family).inc()
            try:
                await asyncio.wait_for(gate.semaphore.acquire(), self.queue_timeout_s)
            except TimeoutError:
                raise self._overloaded(family, gate) from None
            finally:
                gate.waiting -= 1
                QUEUED.labels(family=family).dec()
        else:
            await gate.semaphore.acquire()
        IN_FLIGHT.labels(family=family).inc()
        started = time.monotonic()
        try:
            yield
        finally:
            gate.seconds = 0.8 * gate.seconds + 0.2 * (time.monotonic() - started)
            IN_FLIGHT.labels(family=family).dec()
            gate.semaphore.release()
