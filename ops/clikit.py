"""What every `ctower` command shares: exit codes, tables or JSON, the target options.

Scripts rely on the exit codes, so they are named once here and listed in every
command's help.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import click

from ops.context import ConfigError, OpsContext, build_context, resolve_target
from shared.db import Database

EXIT_OK = 0
EXIT_PROBLEMS = 1  # found problems, or a run that did only part of its work
EXIT_USAGE = 2  # bad arguments, or nothing to point at (no local stack, no cloud settings)
EXIT_REFUSED = 3  # a safety check said no (purge without confirmation, a changed migration)
EXIT_CODES = ("Exit codes: 0 ok; 1 problems found or partial failure; 2 usage or configuration error; "
              "3 refused by a safety check.")

F = TypeVar("F", bound=Callable[..., Any])


def target_options(func: F) -> F:
    """--project and --database-url: the cloud, or another database than the local stack's."""
    func = click.option("--database-url", envvar="DATABASE_URL", metavar="URL",
                        help="Postgres URL (default: the local stack's, or Cloud SQL with CLOUD_SQL_INSTANCE).")(func)
    func = click.option("--project", metavar="PROJECT",
                        help="Google Cloud project: work on the cloud instead of the local stack "
                             "(with CLOUD_SQL_INSTANCE or DATABASE_URL for the database).")(func)
    return func


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON instead of tables.")(func)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def ops_context(project: str | None, database_url: str | None, *, need_pubsub: bool = True) -> Iterator[OpsContext]:
    """The command's context; a missing configuration is a usage error (exit 2), not a traceback."""
    try:
        ctx = build_context(project, database_url, need_pubsub=need_pubsub)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        yield ctx
    finally:
        ctx.close()


def open_database(database_url: str | None) -> Database:
    """The target's database for commands that take only --database-url (see ops.context); the caller closes it."""
    return Database(resolve_target(None, database_url, need_pubsub=False).settings, size=1)


def emit(data: Any, as_json: bool, text: str | Sequence[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))
    else:
        click.echo(text if isinstance(text, str) else "\n".join(text))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], empty: str = "(none)",
          uncut: Sequence[str] = ()) -> str:
    """A plain aligned table; cells are cut at 60 characters (except `uncut` columns) to keep rows readable."""
    if not rows:
        return empty
    cells = [[_cell(row.get(col), col not in uncut) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.upper().ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any, cut: bool = True) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value).replace("\n", " ")
    return text if not cut or len(text) <= 60 else text[:57] + "..."


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
