"""Postgres connections: a small per-instance pool and one transaction helper.

`DATABASE_URL` (locally; a unix-socket host such as pgserver's is understood) or the
Cloud SQL Python Connector with IAM auth (in the cloud). Connections are made on
first use and reused, so a writer pays the connect cost once per instance. A pooled
connection the server or the network has closed (a restart, a maintenance event, an
idle cut) is dropped before it is handed out, so the first write after it does not fail.
CLOUD_SQL_ADMIN_ENDPOINT (unset in production) points the connector's SQL Admin API
calls elsewhere: `make test` and `make cloud-local` use a local stand-in.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlparse

from shared.config import Settings, get_settings, load_settings
from shared.instance import PerInstance


class Cursor(Protocol):
    rowcount: int
    description: Any

    def execute(self, operation: str, args: Any = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


def connect_kwargs(url: str) -> dict[str, Any]:
    """pg8000 keyword arguments for a postgresql:// URL (host may be a socket directory)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres", "postgresql+pg8000"):
        raise ValueError(f"DATABASE_URL must start with postgresql://, got {parsed.scheme}://")
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    kwargs: dict[str, Any] = {
        "user": unquote(parsed.username or "postgres"),
        "database": unquote(parsed.path.lstrip("/") or "postgres"),
    }
    if parsed.password:
        kwargs["password"] = unquote(parsed.password)
    host = query.get("host") or (unquote(parsed.hostname) if parsed.hostname else None)
    port = parsed.port or int(query.get("port", 5432))
    if host and host.startswith("/"):
        kwargs["unix_sock"] = f"{host}/.s.PGSQL.{port}"
    else:
        kwargs["host"] = host or "localhost"
        kwargs["port"] = port
    return kwargs


def _open(settings: Settings) -> Any:
    if settings.database_url:
        import pg8000.dbapi

        return pg8000.dbapi.connect(**connect_kwargs(settings.database_url), timeout=30)
    if settings.cloud_sql_instance:
        from google.cloud.sql.connector import IPTypes

        return _connector.get().connect(
            settings.cloud_sql_instance, "pg8000", user=settings.db_user, db=settings.db_name,
            password=settings.db_password, enable_iam_auth=settings.db_iam_auth,
            ip_type=IPTypes.PRIVATE if settings.db_private_ip else IPTypes.PUBLIC, timeout=30,
        )
    raise RuntimeError("no database configured: set DATABASE_URL, or CLOUD_SQL_INSTANCE with DB_NAME and DB_USER")


def _make_connector() -> Any:
    """One connector per instance: it keeps the certificate and instance metadata for every connection.

    Lazy refresh: Cloud Functions throttle CPU between requests, so a background refresh
    could stall; the certificate is renewed on the connect that finds it near expiry.
    """
    from google.cloud.sql.connector import Connector

    return Connector(refresh_strategy="lazy",
                     sqladmin_api_endpoint=os.environ.get("CLOUD_SQL_ADMIN_ENDPOINT") or None)


_connector: PerInstance[Any] = PerInstance(_make_connector)


def reset_connector() -> None:
    """Close the instance's connector (tests, or after changing CLOUD_SQL_ADMIN_ENDPOINT)."""
    old = _connector.current()
    _connector.reset()
    if old is not None:
        with contextlib.suppress(Exception):
            old.close()


IDLE_PING_SECONDS = 30.0  # idle longer than this: one round trip proves the connection before use


def _alive(conn: Any) -> bool:
    """Whether a pooled connection can still be used.

    An idle Postgres connection has nothing to read: a readable socket means the server
    closed it (EOF; a restart also sends its FATAL first) or the TLS front cut it. That
    check costs no round trip. A connection idle for IDLE_PING_SECONDS also gets one
    round trip, for the cut that leaves no trace on the socket (an idle timeout in between).
    """
    sock = getattr(conn, "_usock", None)
    if sock is None:  # not pg8000: trust it, as before
        return True
    try:
        if sock.fileno() < 0:
            return False
        pending = sock.pending() if hasattr(sock, "pending") else 0  # TLS: bytes already decrypted
        if pending or select.select([sock], [], [], 0)[0]:
            return False
        if time.monotonic() - conn.__dict__.get("_ct_released", 0.0) > IDLE_PING_SECONDS:
            conn.execute_simple("SELECT 1")
    except Exception:
        return False
    return True


class Database:
    """A bounded pool of pg8000 connections; a broken connection is dropped, not reused."""

    @classmethod
    def for_url(cls, url: str, size: int | None = None) -> Database:
        """A pool on `url` with every other setting from the environment (tools, tests, bench)."""
        from dataclasses import replace

        return cls(replace(load_settings(), database_url=url), size=size)

    def __init__(self, settings: Settings, size: int | None = None) -> None:
        self.settings = settings
        self.size = max(1, size or settings.db_pool_size)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(self.size)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=60):
            raise TimeoutError(f"no database connection free in 60 s (pool of {self.size})")
        conn = None
        try:
            conn = self._take_idle()
            if conn is None:
                conn = _open(self.settings)
            yield conn
        except BaseException:
            if conn is not None:
                _close_quietly(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                conn.__dict__["_ct_released"] = time.monotonic()
                self._idle.put(conn)
            self._slots.release()

    def _take_idle(self) -> Any:
        """The most recently used idle connection that is still alive; dead ones are closed on the way."""
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return None
            if _alive(conn):
                return conn
            _close_quietly(conn)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.connection() as conn:
            cursor = _prepared_cursor(conn)
            try:
                yield cursor
                _commit(conn)
            except BaseException:
                _rollback_quietly(conn)
                raise

    @contextmanager
    def autocommit(self) -> Iterator[Cursor]:
        """A cursor whose every statement is its own implicit transaction: no BEGIN, no COMMIT.

        A prepared statement is then one round trip, committed when it ends and rolled back
        whole if it fails (the writers' ledger statement, shared/writers/ledger.py).
        """
        with self.connection() as conn:
            conn.autocommit = True
            try:
                yield _prepared_cursor(conn)
            finally:
                conn.autocommit = False

    def close(self) -> None:
        while True:
            try:
                _close_quietly(self._idle.get_nowait())
            except queue.Empty:
                return


def _commit(conn: Any) -> None:
    """COMMIT as a simple query: one round trip (pg8000's commit() parses, describes, then executes)."""
    if hasattr(conn, "execute_simple"):
        conn.execute_simple("COMMIT")
    else:
        conn.commit()


def _prepared_cursor(conn: Any) -> Any:
    """A cursor whose parameterised statements are prepared once per connection.

    pg8000 runs every parameterised statement unnamed: parse, describe, then bind/execute,
    three round trips each. Prepared once and kept on the connection (a broken connection
    is dropped with its statements), each later run is one bind/execute round trip. A
    writer repeats one statement per event type, so on a warm connection a write is one
    round trip (docs/benchmarks.md).
    """
    global _PREPARED_CURSOR
    if not hasattr(conn, "prepare_statement"):  # not a pg8000 connection: its own cursor
        return conn.cursor()
    if _PREPARED_CURSOR is None:
        _PREPARED_CURSOR = _prepared_cursor_class()
    return _PREPARED_CURSOR(conn)


_PREPARED_CURSOR: type | None = None


def _prepared_cursor_class() -> type:
    import pg8000.dbapi
    from pg8000.converters import make_params

    class PreparedCursor(pg8000.dbapi.Cursor):  # type: ignore[misc]
        def execute(self, operation: str, args: Any = (), stream: Any = None) -> Any:
            if not args or stream is not None or not isinstance(args, (tuple, list)):
                return super().execute(operation, args, stream)
            conn = self._c
            if conn is None or conn._sock is None:
                raise pg8000.dbapi.InterfaceError("connection is closed")
            if not conn._in_transaction and not conn.autocommit:
                conn.execute_simple("begin transaction")
            cache: dict[str, Any] = conn.__dict__.setdefault("_ct_prepared", {})
            prepared = cache.get(operation)
            if prepared is None:  # the %s -> $n rewrite scans the SQL char by char: once per statement too
                statement, _ = pg8000.dbapi.convert_paramstyle(pg8000.dbapi.paramstyle, operation, args)
                prepared = cache[operation] = (statement, *conn.prepare_statement(statement, ()))
            statement, name, columns, input_funcs = prepared
            self._context = conn.execute_named(name, make_params(conn.py_types, args), columns, input_funcs,
                                               statement)
            self._row_iter = None if self._context.rows is None else iter(self._context.rows)
            self._input_oids = ()
            self.input_types: list[Any] = []
            return None

    return PreparedCursor


def _rollback_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # the connection is discarded by the caller anyway
        conn.rollback()


def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection may fail; nothing to do
        conn.close()


def rows_as_dicts(cursor: Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


_database: PerInstance[Database] = PerInstance(lambda: Database(get_settings()))


def get_database() -> Database:
    """The instance's pool, made on first use."""
    return _database.get()
