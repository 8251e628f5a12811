"""Apply `sql/NNN_name.sql` in order, each in its own transaction, recording what ran.

A migration already applied whose file has since changed stops the run: the
database and the repository disagree, and a person must decide which is right.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from shared.db import Database

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 727_001  # pg_advisory_xact_lock key: one migration runner at a time


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied: bool
    changed: bool


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_snake.sql")
        migrations.append(Migration(int(match.group(1)), path.name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {versions}")
    return migrations


_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


def status(db: Database, sql_dir: Path = SQL_DIR) -> list[MigrationState]:
    with db.transaction() as cur:
        cur.execute(_CREATE_LEDGER)
        cur.execute("SELECT version, checksum FROM schema_migrations")
        applied = {int(v): c for v, c in cur.fetchall()}
    return [MigrationState(m, m.version in applied, m.version in applied and applied[m.version] != m.checksum)
            for m in discover(sql_dir)]


def migrate(db: Database, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply what is pending; returns the names applied (empty when up to date)."""
    done: list[str] = []
    with db.transaction() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        cur.execute(_CREATE_LEDGER)
        cur.execute("SELECT version, checksum FROM schema_migrations")
        applied = {int(v): c for v, c in cur.fetchall()}
        for migration in discover(sql_dir):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(f"{migration.name} was applied and has changed since; "
                                         "restore the file or write a new migration")
                continue
            cur.execute(migration.sql)
            cur.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum))
            done.append(migration.name)
    return done
