"""``gantry keys create | list | revoke``: API keys for ``GANTRY_AUTH_MODE=keys``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gantry.cli.console import console
from gantry.core.errors import GantryError
from gantry.core.settings import get_settings
from gateway.auth.keys import SCOPES, ApiKeyStore

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _store() -> ApiKeyStore:
    return ApiKeyStore(get_settings().effective_jobs_db_url)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="a name to recognise and revoke the key by")],
    rate: Annotated[
        str | None, typer.Option(help='requests allowed, e.g. "5/second", "1000/hour"')
    ] = None,
    scopes: Annotated[
        str, typer.Option(help=f"comma-separated, of: {', '.join(SCOPES)} (admin: all)")
    ] = ",".join(s for s in SCOPES if s != "admin"),
) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""
    try:
        key, record = _store().create(
            name, scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()), rate=rate
        )
    except GantryError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(1) from error
    console.print(
        f"key [bold]{record.name}[/] ({', '.join(record.scopes)}; "
        f"{record.rate or 'no rate limit'}): store it now, it is not shown again"
    )
    print(key)


@app.command("list")
def list_keys() -> None:
    """Every key (never its value): prefix, scopes, rate, when created and revoked."""
    table = Table("name", "prefix", "scopes", "rate", "created", "revoked")
    for record in _store().list():
        table.add_row(
            record.name,
            f"{record.prefix}…",
            ",".join(record.scopes),
            record.rate or "-",
            record.created_at.isoformat(timespec="seconds"),
            record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "-",
        )
    console.print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key: its next request is refused."""
    try:
        _store().revoke(name)
    except GantryError as error:
        console.print(f"[red]{error.message}")
        raise typer.Exit(1) from error
    console.print(f"key {name} revoked")
