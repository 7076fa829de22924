"""The SQL store's engine: SQLite under the state dir by default, any SQLAlchemy URL else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine


def sql_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite, its directory is made and writers wait on locks;
    ``postgresql://`` uses psycopg 3.

    The gateway, the workers and the CLI are separate processes sharing one SQLite file:
    a 30 s busy timeout and WAL journaling let them read while one writes.
    """
    if url.startswith(("postgresql://", "postgres://")):
        # The driver Gantry ships is psycopg 3; SQLAlchemy's default for the bare scheme is
        # psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        connect_args = {"timeout": 30, "check_same_thread": False}
    engine = create_engine(url, connect_args=connect_args, future=True)
    if url.startswith("sqlite"):
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    return engine
