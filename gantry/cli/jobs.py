"""``gantry jobs list | submit | watch | cancel | result``: a client of the jobs API.

These commands speak HTTP to a gateway (``--url``, by default the local one), so they work
the same against ``gantry up`` and a deployment.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from gantry.cli.console import console, progress
from gantry.core.settings import get_settings

app = typer.Typer(help="Submit and follow jobs of the jobs API.", no_args_is_help=True)

UrlOption = Annotated[str | None, typer.Option(help="gateway base URL")]
FINAL = ("succeeded", "failed", "cancelled")


def _base(url: str | None) -> str:
    settings = get_settings()
    return url or f"http://{settings.gateway_host}:{settings.gateway_port}"


def _client(url: str | None, timeout: float) -> httpx.Client:
    """An HTTP client of the gateway, sending ``GANTRY_API_KEY`` when it is set."""
    key = get_settings().api_key
    headers = {"X-API-Key": key} if key else {}
    return httpx.Client(base_url=_base(url), timeout=timeout, headers=headers)


def _checked(response: httpx.Response) -> Any:
    """The JSON of a 2xx response; otherwise the error body's message, and exit 1."""
    if response.is_success:
        return response.json()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    console.print(f"[red]{response.status_code}[/]: {message}")
    raise typer.Exit(1)


def _value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses (numbers, lists, null), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


@app.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="only jobs in this status")] = None,
    kind: Annotated[str | None, typer.Option(help="only jobs of this kind")] = None,
    page: Annotated[int, typer.Option(help="page number, from 1")] = 1,
    url: UrlOption = None,
) -> None:
    """Jobs, newest first."""
    query = {k: v for k, v in (("status", status), ("kind", kind)) if v is not None}
    with _client(url, 30) as client:
        body = _checked(client.get("/v1/jobs", params={**query, "page": page}))
    table = Table("id", "kind", "status", "progress", "stage", "created")
    for job in body["jobs"]:
        table.add_row(
            job["id"],
            job["kind"],
            job["status"],
            f"{job['progress']:.0%}",
            job["stage"],
            job["created_at"],
        )
    console.print(table)
    if body["next"]:
        console.print(f"more: gantry jobs list --page {body['next']}")


@app.command("submit")
def submit(
    kind: Annotated[str, typer.Argument(help="the job kind, e.g. superres_batch")],
    file: Annotated[
        list[str] | None,
        typer.Option(
            help="[FIELD=]PATH: upload PATH and pass its input id as FIELD "
            "(default: append it to `inputs`); repeatable"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE parameter (VALUE parsed as JSON); repeatable"),
    ] = None,
    watch_: Annotated[bool, typer.Option("--watch", help="follow it until it ends")] = False,
    url: UrlOption = None,
) -> None:
    """Upload inputs, submit a job and print its id (alone on the last line)."""
    params: dict[str, Any] = {}
    with _client(url, 300) as client:
        for spec in file or []:
            field, _, path = spec.rpartition("=")
            source = Path(path)
            with source.open("rb") as fh:
                stored = _checked(client.post("/v1/inputs", files={"file": (source.name, fh)}))
            if field:
                params[field] = stored["id"]
            else:
                params.setdefault("inputs", []).append(stored["id"])
        for item in set_ or []:
            key, sep, text = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--set takes KEY=VALUE, got {item!r}")
            params[key] = _value(text)
        job = _checked(client.post("/v1/jobs", json={"kind": kind, "params": params}))
    console.print(f"{job['kind']} job queued")
    print(job["id"])
    if watch_:
        watch(job["id"], url=url)


@app.command("watch")
def watch(
    job_id: str,
    url: UrlOption = None,
    interval: Annotated[float, typer.Option(help="seconds between polls")] = 0.5,
) -> None:
    """A live progress bar of one job until it ends; exit 1 unless it succeeded."""
    with progress() as bar, _client(url, 10) as client:
        task = bar.add_task(job_id[:8], total=1000)
        while True:
            job = _checked(client.get(f"/v1/jobs/{job_id}"))
            bar.update(
                task,
                completed=int(job["progress"] * 1000),
                description=f"{job['kind']} {job['status']}: {job['stage']}",
            )
            if job["status"] in FINAL:
                break
            time.sleep(interval)
    if job["status"] != "succeeded":
        console.print(f"[red]{job['status']}[/]: {job.get('error')}")
        raise typer.Exit(1)
    console.print(f"[green]succeeded[/]: gantry jobs result {job_id}")


@app.command("cancel")
def cancel(job_id: str, url: UrlOption = None) -> None:
    """Cancel a job: at once when queued, at its next tile or step when running."""
    with _client(url, 30) as client:
        job = _checked(client.delete(f"/v1/jobs/{job_id}"))
    console.print(f"{job_id}: {job['status']}")


@app.command("result")
def result(
    job_id: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="where to write it")] = None,
    url: UrlOption = None,
) -> None:
    """Download the result file of a succeeded job."""
    with _client(url, 300) as client:
        response = client.get(f"/v1/jobs/{job_id}/result")
        if not response.is_success:
            _checked(response)
    disposition = response.headers.get("content-disposition", "")
    name = disposition.rpartition("filename=")[2].strip('"') or f"{job_id}.bin"
    target = output or Path(name)
    target.write_bytes(response.content)
    console.print(f"{target} ({len(response.content)} bytes, {response.headers['content-type']})")
