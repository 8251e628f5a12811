"""Shared fixtures: a real Postgres (pgserver) and the local stack, started once per session.

Everything binds to free loopback ports and temporary folders, so the suite runs
beside a `make dev` stack and beside another test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.localdb import ensure_database, start_embedded
from ops.stack import free_port
from shared.db import Database, rows_as_dicts
from shared.migrations import migrate
from shared.topology import load_topology
from tests.fixtures.tenants import stack_env

ROOT = Path(__file__).resolve().parent.parent
DATA_TABLES = ("obras", "proposals", "pipeline_moves", "messages", "conversations", "leads", "events")


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("CT_TEST_DATABASE_URL")
    if given:
        yield given
        return
    server = start_embedded(tmp_path_factory.mktemp("pg"))
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> str:
    url = ensure_database(pg_server_url, f"ct_test_{uuid.uuid4().hex[:10]}")
    database = Database.for_url(url, size=1)
    migrate(database)
    database.close()
    return url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    pool = Database.for_url(database_url, size=4)
    yield pool
    pool.close()


@pytest.fixture
def clean_db(database: Database) -> Database:
    """The test database with every data table emptied (tenants and migrations stay)."""
    with database.transaction() as cur:
        cur.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")
    return database


def query(database: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    with database.transaction() as cur:
        cur.execute(sql, args)
        return rows_as_dicts(cur)


def new_tenant(database: Database, name: str, prefix: str) -> str:
    """A tenant with a fresh id (`prefix-…`), so a test on the shared database sees only its own rows."""
    tenant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    with database.transaction() as cur:
        cur.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant_id, name))
    return tenant_id


@pytest.fixture
def console_session_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key the console signs its session cookies with, as a deployment sets it."""
    monkeypatch.setenv("CONSOLE_SESSION_SECRET", "s" * 40)


class RunningStack:
    """A `ctower dev` subprocess and what its `.local/stack.json` says."""

    def __init__(self, proc: subprocess.Popen[bytes], description: dict[str, Any], log_path: Path,
                 env: dict[str, str]) -> None:
        self.proc = proc
        self.description = description
        self.log_path = log_path
        self.env = env

    @property
    def project(self) -> str:
        return str(self.description["project"])

    def url(self, function: str) -> str:
        return str(self.description["functions"][function])

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_stack(tmp: Path, database_url: str, extra_env: dict[str, str] | None = None,
                dev_args: tuple[str, ...] = ()) -> RunningStack:
    """Start the stack exactly as `make dev` does (`ctower dev`, plus `dev_args`), on free ports."""
    env = {**os.environ, "CT_LOCAL_DIR": str(tmp), "DATABASE_URL": database_url,
           "GOOGLE_CLOUD_PROJECT": f"ct-test-{uuid.uuid4().hex[:6]}", "CT_PORT_PUBSUB": str(free_port()),
           # Test stacks dead-letter fast (5 attempts, 1-2 s apart); the fault drills use the local defaults.
           "CT_MAX_DELIVERY_ATTEMPTS": "5", "CT_MIN_BACKOFF_SECONDS": "1", "CT_MAX_BACKOFF_SECONDS": "2",
           "THREADS": "4", **(extra_env or {})}
    env.pop("PUBSUB_EMULATOR_HOST", None)
    for name in load_topology().functions:
        env[f"CT_PORT_{name.upper()}"] = str(free_port())
    log_path = tmp / "stack.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "dev", *dev_args], cwd=ROOT, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    description_path = tmp / "stack.json"
    deadline = time.monotonic() + 120
    while not description_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the local stack did not start:\n" + log_path.read_text()[-5000:])
        time.sleep(0.2)
    return RunningStack(proc, json.loads(description_path.read_text()), log_path, env)


def stop_stack(stack: RunningStack) -> None:
    stack.proc.terminate()
    try:
        stack.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(stack.proc.pid, 9)
        stack.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[RunningStack]:
    # The assistant has its own stack with OpenAI and provider stand-ins (tests/integration/test_assistant.py).
    running = start_stack(tmp_path_factory.mktemp("stack"), database_url,
                          extra_env={**stack_env(), "ASSISTANT_ENABLED": "false"})
    os.environ["PUBSUB_EMULATOR_HOST"] = running.description["pubsub_emulator_host"]
    yield running
    stop_stack(running)
    os.environ.pop("PUBSUB_EMULATOR_HOST", None)


def wait_for(check: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
