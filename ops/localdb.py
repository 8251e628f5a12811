"""The embedded Postgres (pgserver) behind the local stack and the tests."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.db import Database
from shared.migrations import migrate

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def start_embedded(data_dir: Path) -> Any:
    """A pgserver (PostgreSQL 16) on a unix socket in `data_dir`; it keeps its data between runs."""
    import pgserver

    # Its INFO lines include an atexit one, written after test runners close their streams.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(data_dir), cleanup_mode="stop")


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; returns its URL."""
    if not _DB_NAME.match(name):
        raise ValueError(f"bad database name {name!r}")
    admin = Database.for_url(server_url, size=1)
    try:
        with admin.connection() as conn:
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return with_database(server_url, name)


@contextmanager
def migrated_embedded(data_dir: Path, name: str) -> Iterator[tuple[Any, str]]:
    """A server of its own with database `name` migrated: (server, its URL); stopped and removed after."""
    server = start_embedded(data_dir)
    try:
        url = ensure_database(server.get_uri(), name)
        db = Database.for_url(url, size=1)
        try:
            migrate(db)
        finally:
            db.close()
        yield server, url
    finally:
        server.cleanup()


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    scheme_and_host, _, _ = head.rpartition("/")
    return f"{scheme_and_host}/{name}{sep}{query}"


def stop_embedded(server: Any) -> None:
    """Stop a pgserver's postmaster now (fast shutdown: sessions are cut), keeping its data."""
    import pgserver

    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def restart_embedded(server: Any) -> None:
    """Start a stopped pgserver again on the same data directory and socket."""
    server.ensure_postgres_running()


def record_commit_times(server: Any) -> None:
    """Have an embedded Postgres record when each transaction commits (track_commit_timestamp).

    Then `pg_xact_commit_timestamp(xmin)` says when a row was committed: the end-to-end
    benchmark reads it instead of polling for the row. A server setting: written once into
    the data directory and applied by one restart, before anything else connects.
    """
    if "on" in server.psql("SHOW track_commit_timestamp;").split():
        return
    server.psql("ALTER SYSTEM SET track_commit_timestamp = on;")
    stop_embedded(server)
    restart_embedded(server)
