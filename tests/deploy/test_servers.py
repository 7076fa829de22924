"""The gateway and a worker as the containers run them (`gantry gateway`, `gantry worker
--queues inference`, settings from the environment and a secrets directory) on the machine's
PostgreSQL and Redis, as in the cluster: keys and job records in PostgreSQL, jobs through
Redis, a batch job finished end to end."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gantry.core.settings import Settings
from gantry.core.sql import sql_engine
from tests.conftest import free_port, run_gantry
from tests.paths import REPO, SET5

PG_ROLE = "gantry_test"
REDIS = "redis://127.0.0.1:6379/14"


def _psql(sql: str) -> None:
    """Run SQL as the postgres superuser (peer authentication, as root on this machine)."""
    done = subprocess.run(
        ["su", "postgres", "-c", f'psql -qAt -v ON_ERROR_STOP=1 -c "{sql}"'],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"PostgreSQL on 127.0.0.1:5432 is needed: {done.stderr}"


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh database owned by a password role, over TCP like a remote server."""
    database = f"gantry_{secrets.token_hex(4)}"
    _psql(
        f"DO \\$\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='{PG_ROLE}') THEN "
        f"CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{PG_ROLE}'; END IF; END \\$\\$;"
    )
    _psql(f"CREATE DATABASE {database} OWNER {PG_ROLE}")
    yield f"postgresql://{PG_ROLE}:{PG_ROLE}@127.0.0.1:5432/{database}"
    _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture()
def redis_url() -> Iterator[str]:
    subprocess.run(["redis-cli", "-n", "14", "flushdb"], check=True, capture_output=True)
    yield REDIS
    subprocess.run(["redis-cli", "-n", "14", "flushdb"], check=True, capture_output=True)


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gantry.cli", *args],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_gateway_and_worker_on_postgresql_and_redis(
    triton: object, triton_settings: Settings, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    settings = triton_settings.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "broker_url": redis_url,
            "auth_mode": "keys",
            "gateway_port": free_port(),
            "grpc_port": free_port(),
        }
    )
    # The database URL (it holds the password) is a file, as the Secret mounts it.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "gantry_jobs_db_url").write_text(postgres_url + "\n")
    env = settings.child_env(PYTHONUNBUFFERED="1", GANTRY_SECRETS_DIR=str(secrets_dir))
    env.pop("GANTRY_JOBS_DB_URL", None)

    created = run_gantry(env, "keys", "create", "deploy-test", "--scopes", "superres,jobs")
    assert created.returncode == 0, created.stdout + created.stderr
    key = created.stdout.strip().splitlines()[-1]

    log = tmp_path / "servers.log"
    worker = _start(env, log, "worker", "--queues", "inference")
    gateway = _start(env, log, "gateway")
    try:
        base = f"http://127.0.0.1:{settings.gateway_port}"
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            else:
                pytest.fail(f"the gateway did not get ready:\n{log.read_text()[-3000:]}")
            assert client.get("/v1/models", headers={"Authorization": ""}).status_code == 401

            image = (SET5 / "LR_bicubic" / "X4" / "birdx4.png").read_bytes()
            upload = client.post("/v1/inputs", files={"file": ("bird.png", image)})
            assert upload.status_code == 201, upload.text
            job = client.post(
                "/v1/jobs",
                json={
                    "kind": "superres_batch",
                    "params": {
                        "inputs": [upload.json()["id"]],
                        "model": "realesr-animevideov3-x2",
                    },
                },
            )
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]
            deadline = time.monotonic() + 120
            status = ""
            while time.monotonic() < deadline:
                status = client.get(f"/v1/jobs/{job_id}").json()["status"]
                if status in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.3)
            assert status == "succeeded", log.read_text()[-3000:]
            result = client.get(f"/v1/jobs/{job_id}/result")
            assert result.status_code == 200
            assert result.headers["content-type"] == "application/zip"
    finally:
        _stop(gateway)
        _stop(worker)

    # The records are in PostgreSQL (nothing fell back to SQLite), the job went through Redis.
    assert not (settings.state_dir / "jobs.sqlite").exists()
    engine = sql_engine(postgres_url)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT status FROM jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
        keys = connection.execute(sa.text("SELECT name FROM api_keys")).scalars().all()
    engine.dispose()
    assert stored == "succeeded"
    assert keys == ["deploy-test"]
    bindings = subprocess.run(
        ["redis-cli", "-n", "14", "exists", "_kombu.binding.inference"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert bindings.stdout.strip() == "1"
