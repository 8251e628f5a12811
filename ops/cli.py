"""`ctower`: the operators' and developers' command line.

This module is the entry point only: the top group, `dev` and `db`; each other group
lives in its own `ops/commands_*.py` module and is registered at the bottom with one
`main.add_command(...)` line. What the commands share is in ops/clikit.py; nothing
imports this module back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ops.clikit import EXIT_CODES, EXIT_PROBLEMS, EXIT_REFUSED, emit, json_option, ops_context
from ops.commands_assistant import assistant
from ops.commands_catalog import catalog
from ops.commands_dlq import dlq
from ops.commands_events import events
from ops.commands_inspect import audit_command, status_command, trace_command
from ops.commands_limits import limits
from ops.commands_subscriptions import subscriptions
from ops.commands_tenants import tenants
from ops.commands_users import users
from shared.migrations import SQL_DIR


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
def main() -> None:
    """Control Tower operations: the local stack, the schema, dead letters, failed events, traces.

    Against the local stack by default (it reads .local/stack.json, written by
    `make dev`). For the cloud give --project (or GOOGLE_CLOUD_PROJECT) with
    CLOUD_SQL_INSTANCE (or DATABASE_URL), and no PUBSUB_EMULATOR_HOST.
    """


@main.command(epilog="Exit 0 after Ctrl-C; 1 when a part of the stack died; 2 when it cannot start.")
@click.option("--cloud", is_flag=True, help="Production configuration (`make cloud-local`): every function on "
                                            "Terraform's environment, Secret Manager and Cloud SQL stood in locally.")
def dev(cloud: bool) -> None:
    """Run the local stack in the foreground (what `make dev` does); Ctrl-C stops it."""
    if cloud:
        from ops.cloudlocal import run_forever
    else:
        from ops.stack import run_forever

    sys.exit(run_forever())


@main.group()
def db() -> None:
    """The database schema."""


_sql_dir_option = click.option("--sql-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                               default=SQL_DIR, show_default="the repository's sql/", help="Migrations folder.")
_database_option = click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
                                help="Postgres URL (default: the local stack's, or Cloud SQL with CLOUD_SQL_INSTANCE).")


@db.command("migrate", epilog=f"Exit 3 when an applied migration has changed. {EXIT_CODES}")
@_database_option
@_sql_dir_option
@json_option
def db_migrate(database_url: str | None, sql_dir: Path, as_json: bool) -> None:
    """Apply pending migrations from sql/, each in a transaction (idempotent).

    Refuses to run (exit 3) if a migration already applied has changed since.
    """
    from shared.migrations import MigrationError, migrate

    with ops_context(None, database_url, need_pubsub=False) as ctx:
        try:
            applied = migrate(ctx.database, sql_dir)
        except MigrationError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_REFUSED)
    emit({"applied": applied}, as_json, [f"applied {name}" for name in applied] or ["schema is up to date"])


@db.command("status", epilog=f"Exit 1 when a migration is pending or changed. {EXIT_CODES}")
@_database_option
@_sql_dir_option
@json_option
def db_status(database_url: str | None, sql_dir: Path, as_json: bool) -> None:
    """Which migrations are applied, pending, or changed since applied."""
    from shared.migrations import status

    with ops_context(None, database_url, need_pubsub=False) as ctx:
        states = status(ctx.database, sql_dir)
    rows = [{"migration": s.migration.name,
             "state": "changed" if s.changed else "applied" if s.applied else "pending"} for s in states]
    emit(rows, as_json, [f"{r['state']:<8} {r['migration']}" for r in rows])
    if any(r["state"] != "applied" for r in rows):
        sys.exit(EXIT_PROBLEMS)


# -- the groups of the commands_* modules: one line each ----------------------
main.add_command(dlq)
main.add_command(events)
main.add_command(trace_command)
main.add_command(status_command)
main.add_command(audit_command)
main.add_command(tenants)
main.add_command(subscriptions)
main.add_command(assistant)
main.add_command(catalog)
main.add_command(limits)
main.add_command(users)


if __name__ == "__main__":
    main()
