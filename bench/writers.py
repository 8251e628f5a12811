"""Writers: envelopes/s and database round trips per envelope, for each event type's writer.

`shared.writers.ledger.process` is called directly (no HTTP, no Pub/Sub) against a real
Postgres through the same driver and pool as a deployed writer. The floor is a bare
single-row INSERT transaction of the same envelope JSON, same driver, same pool.

Two counts per envelope: statements (what the code executes, BEGIN and COMMIT included)
and wire round trips (a flush of the socket that waits for the server's answer).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import load_settings
from shared.db import Database
from shared.envelope import Envelope, build_envelope
from shared.payloads import PAYLOAD_MODELS
from shared.writers import WRITERS, ledger, writer_for

TENANT = "default"


class _CountingSocket:
    """The driver's buffered socket; every flush is one trip to the server and back."""

    def __init__(self, inner: Any, owner: CountingDatabase) -> None:
        self._inner = inner
        self._owner = owner

    def flush(self) -> None:
        self._owner.counter.round_trips += 1
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Counter:
    statements: int = 0
    round_trips: int = 0


class CountingDatabase(Database):
    """The real pool; each connection it hands out counts statements and round trips."""

    def __init__(self, url: str, size: int = 2) -> None:
        super().__init__(replace(load_settings(), database_url=url), size=size)
        self.counter = Counter()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with super().connection() as conn:
            if not getattr(conn, "_bench_counted", False):
                _instrument(conn, self)
            yield conn


def _instrument(conn: Any, owner: CountingDatabase) -> None:
    for method in ("execute_simple", "execute_unnamed", "execute_named"):
        original = getattr(conn, method)

        def counted(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            owner.counter.statements += 1
            return _original(*args, **kwargs)

        setattr(conn, method, counted)
    conn._sock = _CountingSocket(conn._sock, owner)
    conn._bench_counted = True


@dataclass(frozen=True)
class WriterFigure:
    name: str
    per_second: float
    statements: float  # per envelope
    round_trips: float  # per envelope
    count: int


def _envelope(event_type: str, payload: dict[str, Any], i: int, at: datetime) -> Envelope:
    model = PAYLOAD_MODELS[event_type].model_validate(payload)
    return build_envelope(event_type=event_type, payload=model, tenant=TENANT, source="bench",
                          correlation_id=str(uuid.uuid4()), source_id=f"{event_type}-{i}", occurred_at=at)


def _payloads(n: int, leads: list[str]) -> dict[str, Callable[[int], dict[str, Any]]]:
    return {
        "lead_created": lambda i: {"name": f"Lead {i}", "phone": f"55419{i:08d}", "email": f"b{i}@example.com",
                                   "source": "site", "source_lead_id": f"b-{i}", "funnel": "end_client"},
        "message_received": lambda i: {"provider": "evolution", "provider_message_id": f"M{i}",
                                       "phone": f"55519{i:08d}", "chat_id": f"55519{i:08d}@s.whatsapp.net",
                                       "display_name": f"Cliente {i}", "text": "Olá"},
        "stage_changed": lambda i: {"lead_id": leads[i % len(leads)], "to_stage": "qualificado", "reason": "bench"},
        "proposal_sent": lambda i: {"lead_id": leads[i % len(leads)], "proposal_ref": f"P-{i}", "amount": "1500.00"},
        "won": lambda i: {"lead_id": leads[i % len(leads)], "proposal_ref": f"P-{i}", "amount": "1500.00"},
        "obra_created": lambda i: {"lead_id": leads[i % len(leads)], "obra_ref": f"O-{i}", "title": f"Obra {i}",
                                   "proposal_ref": f"P-{i}", "area_m2": "42.5"},
    }


def measure(database_url: str, count: int = 300, max_seconds: float = 15.0) -> list[WriterFigure]:
    db = CountingDatabase(database_url)
    try:
        with db.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        at = datetime.now(UTC) - timedelta(days=1)
        figures = []
        leads: list[str] = []
        floor_body = None
        measured = [et for et in _payloads(count, leads) if et in WRITERS]  # lead_created first: others need leads
        for event_type in measured:
            make = _payloads(count, leads)[event_type]
            envelopes = [_envelope(event_type, make(i), i, at + timedelta(seconds=i)) for i in range(count)]
            floor_body = floor_body or json.dumps(envelopes[0].model_dump(mode="json"))
            figures.append(_run(db, event_type, envelopes, max_seconds))
            if event_type == "lead_created":
                with db.transaction() as cur:
                    cur.execute("SELECT id FROM leads WHERE source = 'site' ORDER BY created_at")
                    leads = [str(row[0]) for row in cur.fetchall()]
        again = _payloads(count, leads)["lead_created"]
        duplicates = [_envelope("lead_created", again(i), i, at) for i in range(count)]
        figures.append(_run(db, "lead_created (duplicate delivery)", duplicates, max_seconds))
        figures.insert(0, _floor(db, floor_body or "{}", count, max_seconds))
        return figures
    finally:
        db.close()


def _run(db: CountingDatabase, name: str, envelopes: list[Envelope], max_seconds: float) -> WriterFigure:
    event_type = envelopes[0].event_type
    apply = writer_for(event_type)
    db.counter = Counter()
    for conn_warm in range(1):  # a connection open before the clock starts, as on a warm instance
        with db.transaction() as cur:
            cur.execute("SELECT %s", (conn_warm,))
    db.counter = Counter()
    deadline = time.monotonic() + max_seconds
    start = time.monotonic()
    done = 0
    for n, envelope in enumerate(envelopes):
        if time.monotonic() > deadline:
            break
        ledger.process(db, envelope, f"msg-{name}-{n}", apply)
        done += 1
    elapsed = time.monotonic() - start
    return WriterFigure(name, done / elapsed, db.counter.statements / done, db.counter.round_trips / done, done)


def _floor(db: CountingDatabase, body: str, count: int, max_seconds: float) -> WriterFigure:
    db.counter = Counter()
    deadline = time.monotonic() + max_seconds
    start = time.monotonic()
    done = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        with db.transaction() as cur:
            cur.execute("INSERT INTO bench_floor (body) VALUES (%s::jsonb)", (body,))
        done += 1
    elapsed = time.monotonic() - start
    return WriterFigure("floor: one-row insert transaction", done / elapsed, db.counter.statements / done,
                        db.counter.round_trips / done, done)
