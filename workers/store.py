"""Durable job records: the source of truth for status, progress, results and cancellation.

The broker only carries job ids. Records live in SQL (SQLite by default, PostgreSQL in
deployments) so they survive restarts of the gateway, the workers and the broker. A worker
*claims* a job before running it and keeps a heartbeat while it does, so a job whose worker
died is found and requeued, and a duplicate delivery of the same id does nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.engine import Engine

from gantry.core.sql import sql_engine

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

metadata = MetaData()
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(128), nullable=False, default=""),
    Column("progress", Float, nullable=False, default=0.0),
    Column("params", JSON, nullable=False),
    Column("result", JSON),
    Column("error", JSON),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(128)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime),
    Index("ix_jobs_created_at", "created_at"),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Job:
    """One job record."""

    id: str
    kind: str
    status: str
    stage: str
    progress: float
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, str] | None
    cancel_requested: bool
    attempts: int
    worker: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    heartbeat_at: dt.datetime | None

    def public(self) -> dict[str, Any]:
        """The job as the API returns it (CONTRACT.md)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat() + "Z",
            "updated_at": self.updated_at.isoformat() + "Z",
        }


class JobStore:
    """Job records in a SQL database."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = sql_engine(url)
        metadata.create_all(self.engine)

    def _row(self, job_id: str) -> Job | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return Job(**dict(row)) if row else None

    def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        return self._row(job_id)

    def query(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs, newest first, optionally of one status and one kind."""
        query = select(jobs)
        if status is not None:
            query = query.where(jobs.c.status == status)
        if kind is not None:
            query = query.where(jobs.c.kind == kind)
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit).offset(offset)
        with self.engine.begin() as conn:
            return [Job(**dict(r)) for r in conn.execute(query).mappings()]

    def create(self, kind: str, params: dict[str, Any]) -> Job:
        """A new queued job."""
        now = _now()
        job_id = str(uuid.uuid4())
        # Round-trip through JSON: only JSON-serialisable params are accepted.
        values = {
            "id": job_id,
            "kind": kind,
            "status": "queued",
            "stage": "queued",
            "progress": 0.0,
            "params": json.loads(json.dumps(params)),
            "cancel_requested": False,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(jobs.insert().values(**values))
        job = self._row(job_id)
        assert job is not None
        return job

    def claim(self, job_id: str, worker: str, stale_after_s: float) -> Job | None:
        """Atomically mark the job running for ``worker``; None if it is not ours to run.

        A job can be claimed when it is queued, or running with a heartbeat older than
        ``stale_after_s`` (its worker died). Final jobs are never claimed again, which makes
        every task idempotent under redelivery.
        """
        now = _now()
        stale = now - dt.timedelta(seconds=stale_after_s)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .where(
                    (jobs.c.status == "queued")
                    | ((jobs.c.status == "running") & (jobs.c.heartbeat_at < stale))
                )
                .where(jobs.c.cancel_requested.is_(False))
                .values(
                    status="running",
                    stage="starting",
                    worker=worker,
                    attempts=jobs.c.attempts + 1,
                    heartbeat_at=now,
                    updated_at=now,
                )
            ).rowcount
        return self._row(job_id) if claimed else None

    def _update_running(self, job_id: str, **values: Any) -> bool:
        """Update a job that is still running; returns whether a cancel was requested."""
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .where(jobs.c.status == "running")
                .values(**values)
            )
            flag = conn.execute(
                select(jobs.c.cancel_requested).where(jobs.c.id == job_id)
            ).scalar_one_or_none()
        return bool(flag)

    def progress(self, job_id: str, fraction: float, stage: str) -> bool:
        """Record progress and heartbeat; returns whether a cancel was requested."""
        now = _now()
        return self._update_running(
            job_id,
            progress=max(0.0, min(1.0, fraction)),
            stage=stage,
            heartbeat_at=now,
            updated_at=now,
        )

    def heartbeat(self, job_id: str) -> None:
        """Keep a long step's job alive without changing its progress."""
        self._update_running(job_id, heartbeat_at=_now())

    def finish(
        self,
        job_id: str,
        status: Status,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
        stage: str | None = None,
    ) -> None:
        """Move a job to a final state (only from a non-final one)."""
        now = _now()
        values: dict[str, Any] = {
            "status": status,
            "stage": stage or status,
            "updated_at": now,
            "result": result,
            "error": error,
        }
        if status == "succeeded":
            values["progress"] = 1.0
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .where(jobs.c.status.not_in(tuple(FINAL)))
                .values(**values)
            )

    def requeue(self, job_id: str, stage: str) -> None:
        """Put a running job back in the queue (transient failure, retry)."""
        self._update_running(job_id, status="queued", stage=stage, updated_at=_now())

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel: a queued job is cancelled at once, a running one at its next step."""
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .where(jobs.c.status.not_in(tuple(FINAL)))
                .values(cancel_requested=True, updated_at=now)
            )
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .where(jobs.c.status == "queued")
                .values(status="cancelled", stage="cancelled", updated_at=now)
            )
        return self._row(job_id)

    def stale_running(self, stale_after_s: float) -> list[Job]:
        """Running jobs whose worker stopped reporting."""
        stale = _now() - dt.timedelta(seconds=stale_after_s)
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(jobs).where(jobs.c.status == "running").where(jobs.c.heartbeat_at < stale)
            ).mappings()
            return [Job(**dict(r)) for r in rows]

    def stale_requeued(self, older_than_s: float) -> list[Job]:
        """Queued jobs that already ran once and have waited longer than a retry should.

        Their retry message may have died with a worker (it holds delayed retries in memory).
        """
        cutoff = _now() - dt.timedelta(seconds=older_than_s)
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(jobs)
                .where(jobs.c.status == "queued")
                .where(jobs.c.attempts > 0)
                .where(jobs.c.updated_at < cutoff)
            ).mappings()
            return [Job(**dict(r)) for r in rows]

    def touch(self, job_id: str) -> None:
        """Mark a job as just updated (after re-sending its message)."""
        with self.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(updated_at=_now()))

    def unfinished(self) -> list[Job]:
        """Queued and running jobs."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.status.not_in(tuple(FINAL)))).mappings()
            return [Job(**dict(r)) for r in rows]

    def finished_before(self, cutoff: dt.datetime) -> list[Job]:
        """Final jobs last updated before ``cutoff`` (for result retention)."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(jobs)
                .where(jobs.c.status.in_(tuple(FINAL)))
                .where(jobs.c.updated_at < cutoff)
            ).mappings()
            return [Job(**dict(r)) for r in rows]
