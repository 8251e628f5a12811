"""`python -m bench.soak` (`make soak`): 10,000 mixed webhooks through a local stack, then the database.

Sources and tenants come from tests/traffic/sources.py and tests/traffic/tenants.py (~10% of the webhooks
are exact resends of an earlier one), 32 keep-alive connections, on a stack the harness
starts with its own Postgres and emulator on free ports. Meta Lead Ads leads are read by
leadgen_fetcher from a Graph API stand-in the harness starts on loopback (the stack's
META_GRAPH_BASE_URL), knowing every lead the soak sends and every tenant's page token.
Then, once the writers drain: every distinct event exactly once, every duplicate delivery
recorded as `duplicate` (one row each), every correlation id the edge returned traceable
in `events`, the rows each table must gain, the leads each source must add, every Lead Ads
lead read from the Graph API, and nothing in any dead-letter subscription. Exit 1 if any
check fails.

Stack sizing for the soak (documented in docs/benchmarks.md): THREADS=16 gunicorn threads
per function and DB_POOL_SIZE=16 connections per writer instance, so a writer never waits
for its own pool (4 writers x 16 + the harness stay well under Postgres' 100 connections).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import cli, soak_doc, stacks
from ops.stack import Stack
from shared.db import Database
from tests.standins import GraphStandIn
from tests.traffic import load, tenants
from tests.traffic.sources import SOURCES, Planned, plan, requests_for

SOAK_ENV = {"THREADS": "16", "DB_POOL_SIZE": "16"}


def _query(db: Database, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with db.transaction() as cur:
        cur.execute(sql, args)
        return [tuple(row) for row in cur.fetchall()]


def _drain(db: Database, event_ids: list[str], expected_rows: int, timeout: float) -> int:
    """Wait (bounded) until the soak's events have all their rows and none is still in flight."""
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        rows, in_flight = _query(db, "SELECT count(*), count(*) FILTER (WHERE status IN ('processing', 'failed')) "
                                     "FROM events WHERE event_id = ANY(%s)", event_ids)[0]
        if rows >= expected_rows and not in_flight:
            time.sleep(3)  # and a little more, so a late extra row would show up
            break
        time.sleep(1)
    return int(_query(db, "SELECT count(*) FROM events WHERE event_id = ANY(%s)", event_ids)[0][0])


def _dead_letters(stack: Stack) -> dict[str, int]:
    """Messages waiting in each event type's dead-letter ops subscription (pulled, not acknowledged)."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    found: dict[str, int] = {}
    try:
        for et in stack.topology.event_types.values():
            path = subscriber.subscription_path(stack.project, et.dead_letter_subscription)
            found[et.name] = len(subscriber.pull(subscription=path, max_messages=1000, timeout=5).received_messages)
    finally:
        subscriber.close()
    return found


@contextmanager
def graph_stand_in(planned: list[Planned]) -> Iterator[GraphStandIn]:
    """The Graph API for the run: every Lead Ads lead the plan sends, and every bench tenant's page token."""
    graph = GraphStandIn()
    try:
        graph.tokens.update(tenants.page_tokens())
        graph.leads.update(p.source.graph_lead(p.serial) for p in planned if p.source.graph_lead)
        yield graph
    finally:
        graph.close()


def run(total: int, concurrency: int, duplicate_fraction: float, max_seconds: float, drain_seconds: float,
        write: bool = False) -> int:
    planned = plan(total, duplicate_fraction)
    with tempfile.TemporaryDirectory(prefix="ct-soak-") as tmp, \
            (Path(tmp) / "stack.log").open("w", encoding="utf-8") as log, \
            graph_stand_in(planned) as graph, \
            stacks.environment({**tenants.secret_env(), **SOAK_ENV, "META_GRAPH_BASE_URL": graph.url}), \
            stacks.full_stack(Path(tmp) / "stack", log) as stack:
        assert stack.database_url and stack.tenants_file
        tenants.register(stack.database_url, stack.tenants_file)
        requests = requests_for(planned, stack.function_urls)
        print(f"[soak] sending {len(requests)} webhooks ({sum(p.duplicate for p in planned)} exact resends) "
              f"over {concurrency} connections...", file=sys.stderr, flush=True)
        result = load.run(requests, concurrency=concurrency, max_seconds=max_seconds)
        print(f"[soak] sent in {result.elapsed:.1f} s ({result.rps:.0f} accepted/s); draining...", file=sys.stderr,
              flush=True)
        db = Database.for_url(stack.database_url, size=1)
        try:
            checks = _check(db, stack, planned, result, drain_seconds, graph)
        finally:
            db.close()
    width = max(len(name) for name, _, _, _ in checks)
    print(f"\n{'check':<{width}}  {'expected':>9}  {'found':>9}  result")
    for name, expected, found, ok in checks:
        print(f"{name:<{width}}  {expected!s:>9}  {found!s:>9}  {'ok' if ok else 'FAILED'}")
    errors = [a.error for a in result.answers if a.error][:3]
    failed = [name for name, _, _, ok in checks if not ok]
    summary = [f"{len(planned)} webhooks ({sum(p.duplicate for p in planned)} exact resends) over {concurrency} "
               f"connections, sent in {result.elapsed:.1f} s: {result.rps:.0f} webhooks/s accepted",
               f"answers by status: {dict(sorted(result.statuses().items()))}"
               + (f"; first errors: {errors}" if errors else ""),
               f"sources: {', '.join(s.name for s in SOURCES)}",
               f"tenants: {', '.join(tenants.TENANTS)}",
               "soak: " + ("all checks passed" if not failed else f"FAILED: {', '.join(failed)}")]
    print("\n" + "\n".join(summary))
    if write:
        soak_doc.start(checks, summary)
    return 1 if failed else 0


def _check(db: Database, stack: Stack, planned: list[Planned], result: load.LoadResult, drain_seconds: float,
           graph: GraphStandIn) -> list[tuple[str, object, object, bool]]:
    answers = {a.index: a for a in result.answers}
    sends: dict[str, list[str]] = defaultdict(list)  # event_id -> correlation ids the edge returned
    source_of: dict[str, Planned] = {}
    for i, p in enumerate(planned):
        answer = answers.get(i)
        if answer is None or answer.status != 202:
            continue
        sends[str(answer.body["event_id"])].append(str(answer.body["correlation_id"]))
        source_of[str(answer.body["event_id"])] = p
    distinct_by_table = Counter(p.source.table for p in source_of.values())
    distinct_by_lead_source = Counter(p.source.lead_source for p in source_of.values())
    accepted = sum(len(c) for c in sends.values())
    duplicates_sent = accepted - len(sends)
    found_rows = _drain(db, list(sends), accepted, drain_seconds)
    soak_types = sorted({s.event_type for s in SOURCES})
    rows = _query(db, "SELECT event_id, status, correlation_id FROM events WHERE event_type = ANY(%s)", soak_types)
    # Pub/Sub is at-least-once: a delivery cut after its commit comes back as the same message and is
    # recorded as a `duplicate` row with the processed row's message id. Counted, not a failure.
    redelivered = int(_query(db, "SELECT count(*) FROM events d JOIN events p ON p.event_id = d.event_id "
                                 "AND p.status = 'processed' AND p.message_id = d.message_id "
                                 "WHERE d.status = 'duplicate' AND d.event_id = ANY(%s)", list(sends))[0][0])
    by_event: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event_id, status, correlation_id in rows:
        by_event[str(event_id)].append((str(status), str(correlation_id)))
    once = sum(1 for e in sends if [s for s, _ in by_event.get(e, [])].count("processed") == 1)
    dup_rows = sum(1 for r in rows if r[1] == "duplicate")
    def statuses_ok(event_id: str, sent: int) -> bool:
        statuses = [s for s, _ in by_event.get(event_id, [])]  # (a redelivery may add a duplicate row)
        return statuses.count("processed") == 1 and statuses.count("duplicate") >= sent - 1

    dup_exact = sum(1 for e, cids in sends.items() if len(cids) > 1 and statuses_ok(e, len(cids)))
    traced = {c for _, _, c in rows}
    returned = [c for cids in sends.values() for c in cids]
    exact_traces = sum(1 for e, cids in sends.items() if set(cids) == {c for _, c in by_event.get(e, [])})
    checks: list[tuple[str, object, object, bool]] = [
        ("webhooks answered 202", len(planned), accepted, accepted == len(planned)),
        ("events rows (one per delivery)", accepted + redelivered, found_rows, found_rows == accepted + redelivered),
        ("  of which Pub/Sub redeliveries (same message)", "-", redelivered, True),
        ("distinct events processed exactly once", len(sends), once, once == len(sends)),
        ("unexpected event ids in the database", 0, len(set(by_event) - set(sends)), not set(by_event) - set(sends)),
        ("duplicate rows (one per resend)", duplicates_sent, dup_rows - redelivered,
         dup_rows - redelivered == duplicates_sent),
        ("resent events: 1 processed + 1 duplicate each", sum(len(c) > 1 for c in sends.values()), dup_exact,
         dup_exact == sum(len(c) > 1 for c in sends.values())),
        ("correlation ids traceable in events", len(returned), sum(c in traced for c in returned),
         all(c in traced for c in returned)),
        ("events whose rows carry exactly their sends' ids", len(sends), exact_traces, exact_traces == len(sends)),
    ]
    for table in sorted({s.table for s in SOURCES}):
        count = int(_query(db, f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
        expected = distinct_by_table[table] if table != "leads" else sum(distinct_by_table.values())
        checks.append((f"{table} rows", expected, count, count == expected))
    # Every source has its own phones: each distinct event is one new lead, named after its source.
    leads_by_source: dict[str, int] = {str(source): int(n) for source, n in
                                       _query(db, "SELECT source, count(*) FROM leads GROUP BY source")}
    for lead_source in sorted({s.lead_source for s in SOURCES}):
        found = leads_by_source.pop(lead_source, 0)
        checks.append((f"  leads from {lead_source}", distinct_by_lead_source[lead_source], found,
                       found == distinct_by_lead_source[lead_source]))
    checks.append(("  leads from any other source", 0, sum(leads_by_source.values()), not leads_by_source))
    asked = {path.split("?")[0].rsplit("/", 1)[-1] for path, _ in list(graph.requests)}
    leadgen = {p.source.graph_lead(p.serial)[0] for p in source_of.values() if p.source.graph_lead}
    checks.append(("Lead Ads leads read from the Graph API", len(leadgen), len(asked & leadgen), asked == leadgen))
    dead = _dead_letters(stack)
    ours = sum(n for et, n in dead.items() if et in soak_types)
    checks.append((f"dead letters ({', '.join(soak_types)})", 0, ours, ours == 0))
    others = {et: n for et, n in dead.items() if et not in soak_types and n}
    if others:  # downstream of the soak's events (e.g. assistant replies): reported, judged by their own tests
        print(f"[soak] dead letters of other event types (not the soak's): {others}", file=sys.stderr)
    return checks


def main(argv: list[str] | None = None) -> int:
    cli.stop_cleanly_on_sigterm()
    parser = cli.parser(__doc__, webhooks=10_000, concurrency=32, duplicates=0.10, max_seconds=600.0,
                        drain_seconds=600.0)
    parser.add_argument("--write", action="store_true", help="also write docs/soak.md (what `make soak` does)")
    args = parser.parse_args(argv)
    return run(args.webhooks, args.concurrency, args.duplicates, args.max_seconds, args.drain_seconds, args.write)


if __name__ == "__main__":
    raise SystemExit(main())
