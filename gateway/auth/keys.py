"""API keys in the SQL store (the job store's database), kept only as SHA-256 hashes.

A key is ``gk_`` and 32 random URL-safe bytes: high-entropy, so a plain SHA-256 is enough
(there is no password to guess). ``gantry keys create`` prints it once; the store keeps its
hash, a short prefix to recognise it by, its scopes and its rate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gantry.core.errors import Conflict, InvalidInput, NotFound
from gantry.core.sql import sql_engine

SCOPES = ("faces", "superres", "translate", "jobs", "admin")
KEY_PREFIX = "gk_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RATE = re.compile(r"(\d+)\s*/\s*(second|minute|hour|s|m|h)")
_PERIOD_S = {"second": 1.0, "s": 1.0, "minute": 60.0, "m": 60.0, "hour": 3600.0, "h": 3600.0}

metadata = MetaData()
api_keys = Table(
    "api_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("rate", String(32)),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``period_s`` seconds."""

    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"5/second"``, ``"100/minute"``, ``"1000/hour"`` (``s``, ``m``, ``h`` too)."""
        match = _RATE.fullmatch(text.strip().lower())
        if match is None or int(match.group(1)) < 1:
            raise InvalidInput(
                "invalid_rate", f"a rate is N/second, N/minute or N/hour, not {text!r}"
            )
        return cls(int(match.group(1)), _PERIOD_S[match.group(2)])


@dataclass(frozen=True)
class ApiKey:
    """A key's record (never the key itself)."""

    name: str
    prefix: str
    scopes: tuple[str, ...]
    rate: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Any) -> ApiKey:
        return cls(
            name=row["name"],
            prefix=row["prefix"],
            scopes=tuple(row["scopes"]),
            rate=row["rate"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )


class ApiKeyStore:
    """Create, list, revoke and look up keys."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = sql_engine(url)
        metadata.create_all(self.engine)

    def create(
        self, name: str, *, scopes: tuple[str, ...] = SCOPES, rate: str | None = None
    ) -> tuple[str, ApiKey]:
        """A new key; returns (the key, its record). The key is not stored anywhere.

        Raises:
            InvalidInput: a bad name, an unknown scope, a malformed rate.
            Conflict: ``key_exists``: a key of that name exists (revoked keys keep their name).
        """
        if not _NAME.fullmatch(name):
            raise InvalidInput("invalid_name", "a key name is letters, digits, '.', '_' or '-'")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidInput(
                "invalid_scope", f"scopes are some of {', '.join(SCOPES)}; got {', '.join(unknown)}"
            )
        if rate is not None:
            Rate.parse(rate)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        values = {
            "name": name,
            "key_hash": hash_key(key),
            "prefix": key[:10],
            "scopes": sorted(set(scopes), key=SCOPES.index),
            "rate": rate,
            "created_at": _now(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(api_keys.insert().values(**values))
        except IntegrityError as exc:
            raise Conflict("key_exists", f"a key named {name!r} exists already") from exc
        record = self.get(name)
        assert record is not None
        return key, record

    def get(self, name: str) -> ApiKey | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.name == name)).mappings().first()
        return ApiKey.from_row(row) if row else None

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, by name."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).mappings()
            return [ApiKey.from_row(r) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke a key at once (its next request is refused)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.name == name)
                .where(api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            ).rowcount
        record = self.get(name)
        if record is None:
            raise NotFound("unknown_key", f"no key named {name!r}")
        if not done:
            raise Conflict("key_revoked", f"the key {name!r} was revoked already")
        return record

    def lookup(self, key: str) -> ApiKey | None:
        """The live (not revoked) key with this value, or None."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    select(api_keys)
                    .where(api_keys.c.key_hash == hash_key(key))
                    .where(api_keys.c.revoked_at.is_(None))
                )
                .mappings()
                .first()
            )
        return ApiKey.from_row(row) if row else None
