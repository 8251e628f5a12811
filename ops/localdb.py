"""The embedded Postgres (pgserver) behind the local stack and the tests."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.config import load_settings
from shared.db import Database

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def start_embedded(data_dir: Path) -> Any:
    """A pgserver (PostgreSQL 16) on a unix socket in `data_dir`; it keeps its data between runs."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(str(data_dir), cleanup_mode="stop")


def ensure_database(server_url: str, name: str) -> str:
    """Create database `name` on the server if missing; returns its URL."""
    if not _DB_NAME.match(name):
        raise ValueError(f"bad database name {name!r}")
    admin = Database(replace(load_settings(), database_url=server_url), size=1)
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


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at another database."""
    head, sep, query = url.partition("?")
    scheme_and_host, _, _ = head.rpartition("/")
    return f"{scheme_and_host}/{name}{sep}{query}"
