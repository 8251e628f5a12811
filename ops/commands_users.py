"""`ctower users`: the console's users (the first admin of a tenant, operators, resets).

A password is read from stdin with --password-stdin, or made at random and printed once;
it is never taken as an argument (shell history, process list).
"""

from __future__ import annotations

import dataclasses
import sys

import click

from ops.clikit import EXIT_REFUSED, EXIT_USAGE, emit, fail, json_option, ops_context, table
from shared.console.users import (
    ROLES,
    User,
    UserError,
    add_user,
    disable_user,
    list_users,
    new_password,
    reset_password,
)

_database_option = click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
                                help="Postgres URL (default: the local stack's, or Cloud SQL with CLOUD_SQL_INSTANCE).")
_password_option = click.option("--password-stdin", is_flag=True,
                                help="Read the password from stdin (default: make a random one and print it once).")


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, made here)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return new_password(), True


def _row(user: User) -> dict[str, object]:
    return dataclasses.asdict(user)


@click.group()
def users() -> None:
    """Console users: admin, seller, viewer per tenant; operators see every tenant."""


@users.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The person's name, as the console shows it.")
@click.option("--role", type=click.Choice(ROLES), required=True, help="operator (no tenant), admin, seller or viewer.")
@click.option("--tenant", help="The tenant (required except for operators).")
@_password_option
@_database_option
@json_option
def add(email: str, name: str, role: str, tenant: str | None, password_stdin: bool, database_url: str | None,
        as_json: bool) -> None:
    """Create a user (exit 3 when the e-mail exists or the tenant does not)."""
    password, made = _password(password_stdin)
    with ops_context(None, database_url, need_pubsub=False) as ctx:
        try:
            with ctx.database.transaction() as cur:
                user = add_user(cur, email=email, name=name, role=role, tenant=tenant, password=password)
        except UserError as exc:
            fail(str(exc), EXIT_REFUSED)
    shown = {**_row(user), **({"password": password} if made else {})}
    emit(shown, as_json, [f"added {user.email} ({user.role}{', ' + user.tenant_id if user.tenant_id else ''})"]
         + ([f"password (shown once): {password}"] if made else []))


@users.command("list")
@click.option("--tenant", help="Only this tenant's users.")
@_database_option
@json_option
def list_command(tenant: str | None, database_url: str | None, as_json: bool) -> None:
    """Every user (or one tenant's), with role and whether active."""
    with ops_context(None, database_url, need_pubsub=False) as ctx, ctx.database.transaction() as cur:
        rows = [_row(u) for u in list_users(cur, tenant)]
    emit(rows, as_json, table(rows, ["email", "name", "role", "tenant_id", "active"]))


@users.command("disable")
@click.argument("email")
@_database_option
@json_option
def disable(email: str, database_url: str | None, as_json: bool) -> None:
    """Disable a user and end every session they have (exit 2 when unknown)."""
    with ops_context(None, database_url, need_pubsub=False) as ctx:
        try:
            with ctx.database.transaction() as cur:
                user = disable_user(cur, email)
        except UserError as exc:
            fail(str(exc), EXIT_USAGE)
    emit(_row(user), as_json, f"disabled {user.email}; their sessions are revoked")


@users.command("reset")
@click.argument("email")
@_password_option
@_database_option
@json_option
def reset(email: str, password_stdin: bool, database_url: str | None, as_json: bool) -> None:
    """Set a new password: re-enables the user, lifts a login lock, ends their sessions."""
    password, made = _password(password_stdin)
    with ops_context(None, database_url, need_pubsub=False) as ctx:
        try:
            with ctx.database.transaction() as cur:
                user = reset_password(cur, email, password)
        except UserError as exc:
            fail(str(exc), EXIT_USAGE)
    emit({**_row(user), **({"password": password} if made else {})}, as_json,
         [f"reset {user.email}; their sessions are revoked"] + ([f"password (shown once): {password}"] if made else []))
