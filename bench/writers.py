"""Writers: envelopes/s and database round trips per envelope, for each event type's writer.

`shared.writers.ledger.process` is called directly (no HTTP, no Pub/Sub) against a real
Postgres through the same driver and pool as a deployed writer, for every event type the
writers handle (leadgen_received with its Graph API call, to a local stand-in), then a
duplicate delivery. The floor is a bare single-row INSERT transaction of the same
envelope JSON, same driver, same pool.

Two counts per envelope: statements (what the code executes, BEGIN and COMMIT included)
and wire round trips (a flush of the socket that waits for the server's answer).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.stacks import environment
from shared.config import load_settings
from shared.db import Database
from shared.envelope import Envelope, build_envelope
from shared.payloads import PAYLOAD_MODELS
from shared.secrets import reset_store
from shared.tenants import reset_directory
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


@dataclass
class Seeded:
    """What the later event types refer to, read back after the writers that make it ran."""

    leads: list[str] = field(default_factory=list)
    conversations: list[tuple[str, str]] = field(default_factory=list)  # (conversation id, lead id)


def _payloads(seeded: Seeded) -> dict[str, Callable[[int], dict[str, Any]]]:
    leads, conversations = seeded.leads, seeded.conversations
    return {  # in the order measured: a type's references are made by the types before it
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
        "note_added": lambda i: {"lead_id": leads[i % len(leads)], "body": f"Nota {i}", "author": "bench@example.com"},
        "handoff_requested": lambda i: {"conversation_id": conversations[i % len(conversations)][0],
                                        "lead_id": conversations[i % len(conversations)][1], "to": "human",
                                        "actor": "bench@example.com"},
        # A status for each reply the outbox recorded (_seed_replies): it moves the reply forward.
        "message_status": lambda i: {"provider": "evolution", "provider_message_id": f"OUT{i % len(conversations)}",
                                     "status": "delivered", "recipient": f"55519{i % len(conversations):08d}"},
    }


def measure(database_url: str, count: int = 300, max_seconds: float = 15.0) -> list[WriterFigure]:
    db = CountingDatabase(database_url)
    try:
        with db.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        at = datetime.now(UTC) - timedelta(days=1)
        figures = []
        seeded = Seeded()
        unmeasured = set(WRITERS) - set(_payloads(seeded)) - {"leadgen_received"}
        if unmeasured:
            raise RuntimeError(f"the writers bench does not measure {sorted(unmeasured)}: add them to _payloads")
        floor_body = None
        for event_type in _payloads(seeded):
            make = _payloads(seeded)[event_type]
            envelopes = [_envelope(event_type, make(i), i, at + timedelta(seconds=i)) for i in range(count)]
            floor_body = floor_body or json.dumps(envelopes[0].model_dump(mode="json"))
            figures.append(_run(db, event_type, envelopes, max_seconds))
            if event_type == "lead_created":
                with db.transaction() as cur:
                    cur.execute("SELECT id FROM leads WHERE source = 'site' ORDER BY created_at")
                    seeded.leads = [str(row[0]) for row in cur.fetchall()]
            elif event_type == "message_received":
                seeded.conversations = _seed_replies(db)
        figures.append(_leadgen(db, count, at, max_seconds))
        again = _payloads(seeded)["lead_created"]
        duplicates = [_envelope("lead_created", again(i), i, at) for i in range(count)]
        figures.append(_run(db, "lead_created (duplicate delivery)", duplicates, max_seconds))
        figures.insert(0, _floor(db, floor_body or "{}", count, max_seconds))
        return figures
    finally:
        db.close()


def _seed_replies(db: Database) -> list[tuple[str, str]]:
    """One recorded reply (outbox row, `sent`) in each conversation message_received made; their ids."""
    with db.transaction() as cur:
        cur.execute("SELECT id, lead_id, chat_id FROM conversations WHERE provider = 'evolution' ORDER BY created_at")
        conversations = [(str(c), str(lead), str(chat)) for c, lead, chat in cur.fetchall()]
        for n, (conversation, lead, chat) in enumerate(conversations):
            cur.execute("INSERT INTO outbound_messages (tenant_id, reply_event_id, conversation_id, lead_id, provider, "
                        "phone, body, kind, callback_ref, status, provider_message_id, sent_at, correlation_id) "
                        "VALUES (%s, %s, %s, %s, 'evolution', %s, 'Olá!', 'answer', %s, 'sent', %s, now(), 'bench')",
                        (TENANT, f"bench-reply-{n}", conversation, lead, chat.split("@")[0], f"bench-ref-{n}",
                         f"OUT{n}"))
    return [(conversation, lead) for conversation, lead, _ in conversations]


def _leadgen(db: CountingDatabase, count: int, at: datetime, max_seconds: float) -> WriterFigure:
    """leadgen_received: the Graph API call (a local stand-in) and then the lead's write, as deployed."""
    from tests.fixtures import load
    from tests.standins import GraphStandIn
    from tests.traffic import tenants

    graph = GraphStandIn()
    lead = load("meta_leadgen", "graph_lead")
    for i in range(count):
        graph.leads[f"{i + 1}"] = {**lead, "id": f"{i + 1}", "field_data": [
            {"name": "full_name", "values": [f"Lead Ads {i}"]}, {"name": "phone_number", "values": [f"+55619{i:08d}"]}]}
    graph.tokens |= tenants.page_tokens((TENANT,))
    try:
        with tempfile.TemporaryDirectory(prefix="ct-bench-leadgen-") as tmp, \
                environment({**tenants.configure(Path(tmp), (TENANT,)), "META_GRAPH_BASE_URL": graph.url}):
            reset_directory()
            reset_store()
            envelopes = [_envelope("leadgen_received", {"leadgen_id": f"{i + 1}",
                                                        "page_id": tenants.meta_page_id(TENANT)}, i,
                                   at + timedelta(seconds=i)) for i in range(count)]
            return _run(db, "leadgen_received (with its Graph API call)", envelopes, max_seconds)
    finally:
        reset_directory()
        reset_store()
        graph.close()


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
