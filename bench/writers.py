"""Writers: envelopes/s and database round trips per envelope, for each event type's writer.

`shared.writers.ledger.process` is called directly (no HTTP, no Pub/Sub) against a real
Postgres through the same driver and pool as a deployed writer, for every event type the
writers handle (leadgen_received with its Graph API call, to a local stand-in), then a
duplicate delivery. The floor is a bare single-row INSERT transaction of the same
envelope JSON, same driver, same pool.

The floor runs in slices between each writer's slices, and each writer's ratio is to the
floor of its own slices: on a shared machine both sides then see the same load.

Two counts per envelope: statements (what the code executes, BEGIN and COMMIT included)
and wire round trips (a flush of the socket that waits for the server's answer). Where the
time goes, per envelope: this process' CPU (the Python side: validation, parameters, the
driver), the Postgres backends' CPU (their /proc schedstat: the server side, commit
included) and the WAL bytes written. `python -m bench.writers` prints all of them, the
floor's beside each writer's, on a Postgres of its own (add `--link-ms 0.5` for the link).
"""

from __future__ import annotations

import contextlib
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
    client_cpu: float = 0.0  # seconds of this thread's CPU
    server_cpu: float | None = 0.0  # seconds of the backends' CPU; None when their /proc is not readable
    wal_bytes: int = 0

    def add_costs(self, other: Counter) -> None:
        self.client_cpu += other.client_cpu
        self.server_cpu = None if self.server_cpu is None or other.server_cpu is None \
            else self.server_cpu + other.server_cpu
        self.wal_bytes += other.wal_bytes


class CountingDatabase(Database):
    """The real pool; each connection it hands out counts statements and round trips."""

    def __init__(self, url: str, size: int = 2) -> None:
        super().__init__(replace(load_settings(), database_url=url), size=size)
        self.counter = Counter()
        self.backends: set[int] = set()  # the server processes of this pool's connections
        self._wal = Database.for_url(url, size=1)  # the WAL position, read outside the counted pool

    def close(self) -> None:
        super().close()
        self._wal.close()

    @contextmanager
    def costs(self, counter: Counter) -> Iterator[None]:
        """Add the block's CPU (this thread's, the backends') and WAL bytes to `counter`."""
        wal, server, client = self._wal_position(), self._server_cpu(), time.thread_time()
        yield
        client = time.thread_time() - client
        after = self._server_cpu()
        counter.add_costs(Counter(client_cpu=client, server_cpu=None if server is None or after is None
                                  else after - server, wal_bytes=self._wal_position() - wal))

    def _server_cpu(self) -> float | None:
        try:
            return sum(int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) for pid in self.backends) / 1e9
        except (OSError, ValueError, IndexError):  # not on this machine, or not readable
            return None

    def _wal_position(self) -> int:
        with self._wal.autocommit() as cur:
            cur.execute("SELECT pg_current_wal_insert_lsn() - '0/0'")
            return int(cur.fetchone()[0])

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with super().connection() as conn:
            if not getattr(conn, "_bench_counted", False):
                _instrument(conn, self)
            yield conn


def _instrument(conn: Any, owner: CountingDatabase) -> None:
    owner.backends.add(int(conn.execute_simple("SELECT pg_backend_pid()").rows[0][0]))
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
    floor_per_second: float  # the floor's rate in the slices measured between this figure's own
    costs: Costs | None = None  # per envelope, this figure's and its floor slices'


@dataclass(frozen=True)
class Costs:
    """Where an envelope's time goes, per envelope: microseconds of CPU and bytes of WAL."""

    client_us: float
    server_us: float | None
    wal_bytes: float
    floor_client_us: float
    floor_server_us: float | None
    floor_wal_bytes: float

    @classmethod
    def of(cls, counter: Counter, done: int, floor: Counter, floor_done: int) -> Costs:
        def us(seconds: float | None, n: int) -> float | None:
            return None if seconds is None else seconds / n * 1e6

        return cls(counter.client_cpu / done * 1e6, us(counter.server_cpu, done), counter.wal_bytes / done,
                   floor.client_cpu / floor_done * 1e6, us(floor.server_cpu, floor_done), floor.wal_bytes / floor_done)


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
        floor: Floor | None = None
        for event_type in _payloads(seeded):
            make = _payloads(seeded)[event_type]
            envelopes = [_envelope(event_type, make(i), i, at + timedelta(seconds=i)) for i in range(count)]
            floor = floor or Floor(db, json.dumps(envelopes[0].model_dump(mode="json")))
            figures.append(_run(db, event_type, envelopes, max_seconds, floor))
            if event_type == "lead_created":
                with db.transaction() as cur:
                    cur.execute("SELECT id FROM leads WHERE source = 'site' ORDER BY created_at")
                    seeded.leads = [str(row[0]) for row in cur.fetchall()]
            elif event_type == "message_received":
                seeded.conversations = _seed_replies(db)
        assert floor is not None
        figures.append(_leadgen(db, count, at, max_seconds, floor))
        again = _payloads(seeded)["lead_created"]
        duplicates = [_envelope("lead_created", again(i), i, at) for i in range(count)]
        figures.append(_run(db, "lead_created (duplicate delivery)", duplicates, max_seconds, floor))
        return [floor.figure(), *figures]
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


def _leadgen(db: CountingDatabase, count: int, at: datetime, max_seconds: float, floor: Floor) -> WriterFigure:
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
            return _run(db, "leadgen_received (with its Graph API call)", envelopes, max_seconds, floor)
    finally:
        reset_directory()
        reset_store()
        graph.close()


SLICE = 25  # envelopes, then as many floor transactions, alternately: both see the same moment of the machine


@dataclass
class Floor:
    """The floor, measured in slices between the writers' slices (a noisy neighbour moves both sides)."""

    db: CountingDatabase
    body: str
    done: int = 0
    seconds: float = 0.0
    counter: Counter = field(default_factory=Counter)

    def slice(self, n: int, costs: Counter) -> float:
        """Run `n` floor transactions; the seconds they took (counted apart from the writer's statements),
        their CPU and WAL added to `costs` too."""
        measured, self.db.counter = self.db.counter, self.counter
        spent = Counter()
        with self.db.costs(spent):
            start = time.monotonic()
            for _ in range(n):
                with self.db.transaction() as cur:
                    cur.execute("INSERT INTO bench_floor (body) VALUES (%s::jsonb)", (self.body,))
            elapsed = time.monotonic() - start
        self.db.counter = measured
        for counter in (costs, self.counter):
            counter.add_costs(spent)
        self.done += n
        self.seconds += elapsed
        return elapsed

    def figure(self) -> WriterFigure:
        rate = self.done / self.seconds
        return WriterFigure("floor: one-row insert transaction", rate, self.counter.statements / self.done,
                            self.counter.round_trips / self.done, self.done, rate,
                            Costs.of(self.counter, self.done, self.counter, self.done))


def _run(db: CountingDatabase, name: str, envelopes: list[Envelope], max_seconds: float, floor: Floor
         ) -> WriterFigure:
    event_type = envelopes[0].event_type
    apply = writer_for(event_type)
    for conn_warm in range(1):  # a connection open before the clock starts, as on a warm instance
        with db.transaction() as cur:
            cur.execute("SELECT %s", (conn_warm,))
    db.counter = Counter()
    floor_costs = Counter()
    deadline = time.monotonic() + max_seconds
    elapsed = floor_elapsed = 0.0
    done = floor_done = 0
    while done < len(envelopes) and time.monotonic() < deadline:
        with db.costs(db.counter):
            start = time.monotonic()
            for n, envelope in enumerate(envelopes[done:done + SLICE], start=done):
                ledger.process(db, envelope, f"msg-{name}-{n}", apply)
            elapsed += time.monotonic() - start
        sliced = min(SLICE, len(envelopes) - done)
        done += sliced
        floor_elapsed += floor.slice(sliced, floor_costs)
        floor_done += sliced
    return WriterFigure(name, done / elapsed, db.counter.statements / done, db.counter.round_trips / done, done,
                        floor_done / floor_elapsed, Costs.of(db.counter, done, floor_costs, floor_done))


def main(argv: list[str] | None = None) -> int:
    """The writers alone, on a Postgres of their own: rates, ratios and where each envelope's time goes."""
    from bench import cli, link
    from ops.localdb import migrated_embedded

    cli.stop_cleanly_on_sigterm()
    parser = cli.parser(__doc__, count=300, link_ms=0.0)
    args = parser.parse_args(argv)
    print("| writer | env/s | ratio | rtt | client CPU us (floor) | server CPU us (floor) | WAL bytes (floor) |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="ct-bench-writers-") as tmp, \
            migrated_embedded(Path(tmp) / "pg", "bench_writers") as (_, url), \
            (link.delayed_link(url, args.link_ms) if args.link_ms else contextlib.nullcontext(url)) as target:
        for figure in measure(target, count=args.count):
            c = figure.costs
            assert c is not None

            def us(value: float | None) -> str:
                return "-" if value is None else f"{value:.0f}"

            print(f"| {figure.name} | {figure.per_second:.0f} | {figure.per_second / figure.floor_per_second:.2f} "
                  f"| {figure.round_trips:.1f} | {c.client_us:.0f} ({c.floor_client_us:.0f}) "
                  f"| {us(c.server_us)} ({us(c.floor_server_us)}) | {c.wal_bytes:.0f} ({c.floor_wal_bytes:.0f}) |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
