"""Checking a request's key: known, not revoked, in scope, under its rate.

The same check serves REST (``X-API-Key`` or ``Authorization: Bearer``) and gRPC (metadata
``x-api-key``). Rates are token buckets kept in each gateway process: with several gateway
replicas a key's rate applies per replica.
"""

from __future__ import annotations

import threading
import time

from gantry.core.errors import Forbidden, RateLimited, Unauthenticated
from gateway.auth.keys import ApiKey, ApiKeyStore, Rate


class RateLimiter:
    """A token bucket per key: ``count`` requests, refilled at ``count / period`` per second."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # name → (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, name: str, rate: Rate) -> float:
        """Take one request; 0.0 when allowed, else the seconds until one is."""
        now = time.monotonic()
        per_s = rate.count / rate.period_s
        with self._lock:
            tokens, last = self._buckets.get(name, (float(rate.count), now))
            tokens = min(float(rate.count), tokens + (now - last) * per_s)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / per_s


class Authenticator:
    """Decides whether a key may make a request of a scope."""

    def __init__(self, store: ApiKeyStore, limiter: RateLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter or RateLimiter()

    def check(self, key: str | None, scope: str | None) -> ApiKey:
        """The key's record if it may call an endpoint of ``scope`` (None: any valid key).

        Raises:
            Unauthenticated: no key, or an unknown or revoked one.
            Forbidden: the key lacks ``scope``.
            RateLimited: the key is over its rate (``retry_after_s`` says for how long).
        """
        if not key:
            raise Unauthenticated(
                "unauthorized", "send an API key: X-API-Key: <key> or Authorization: Bearer <key>"
            )
        record = self.store.lookup(key)
        if record is None:
            raise Unauthenticated("unauthorized", "the API key is unknown or revoked")
        if scope is not None and scope not in record.scopes and "admin" not in record.scopes:
            raise Forbidden(
                "forbidden",
                f"the key {record.name!r} has scopes {', '.join(record.scopes)}; "
                f"this needs {scope}",
            )
        if record.rate is not None:
            wait = self.limiter.take(record.name, Rate.parse(record.rate))
            if wait > 0:
                raise RateLimited(
                    "rate_limited",
                    f"the key {record.name!r} is limited to {record.rate}",
                    retry_after_s=wait,
                )
        return record


def key_from_headers(headers: dict[str, str]) -> str | None:
    """The key of ``X-API-Key`` or ``Authorization: Bearer`` (lower-cased header names)."""
    if key := headers.get("x-api-key"):
        return key.strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
