"""`ctower`: the operators' and developers' command line."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from shared.config import load_settings
from shared.db import Database


def _database(url: str | None) -> Database:
    from dataclasses import replace

    settings = load_settings()
    if url:
        settings = replace(settings, database_url=url)
    elif not settings.database_url and not settings.cloud_sql_instance:
        from ops.stack import read_description

        settings = replace(settings, database_url=read_description()["database_url"])
    return Database(settings, size=1)


def _emit(data: Any, as_json: bool, table: list[str] | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    elif table is not None:
        click.echo("\n".join(table))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Control Tower operations: the local stack, the schema, dead letters and traces.

    Against the local stack by default (it reads .local/stack.json); set DATABASE_URL
    or CLOUD_SQL_INSTANCE, GOOGLE_CLOUD_PROJECT and credentials to work on the cloud.
    """


@main.command()
def dev() -> None:
    """Run the local stack in the foreground (what `make dev` does); Ctrl-C stops it."""
    from ops.stack import run_forever

    sys.exit(run_forever())


@main.group()
def db() -> None:
    """The database schema."""


@db.command("migrate")
@click.option("--database-url", envvar="DATABASE_URL", help="Postgres URL (default: the local stack's).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def db_migrate(database_url: str | None, as_json: bool) -> None:
    """Apply pending migrations from sql/, each in a transaction (idempotent).

    Refuses to run (exit 3) if a migration already applied has changed since.
    """
    from shared.migrations import MigrationError, migrate

    database = _database(database_url)
    try:
        applied = migrate(database)
    except MigrationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    finally:
        database.close()
    _emit({"applied": applied}, as_json,
          [f"applied {name}" for name in applied] or ["schema is up to date"])


@db.command("status")
@click.option("--database-url", envvar="DATABASE_URL", help="Postgres URL (default: the local stack's).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def db_status(database_url: str | None, as_json: bool) -> None:
    """Which migrations are applied, pending, or changed since applied (exit 1 if not up to date)."""
    from shared.migrations import status

    database = _database(database_url)
    try:
        states = status(database)
    finally:
        database.close()
    rows = [{"migration": s.migration.name,
             "state": "changed" if s.changed else "applied" if s.applied else "pending"} for s in states]
    _emit(rows, as_json, [f"{r['state']:<8} {r['migration']}" for r in rows])
    if any(r["state"] != "applied" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
