"""Failed events in the ledger, and their replay from the stored envelope.

The `events` table keeps every envelope it saw, so an event whose dead letter was
purged or expired (Pub/Sub keeps it 7 days) can still be sent again: the same
envelope (same event_id and correlation_id) through the same client, marked with
the attribute `replayed=true`, a batch per Publish request (ops.publish_requests) with
two awaiting confirmation at once. The writers are idempotent, so replaying an event
that meanwhile succeeded records a duplicate and changes nothing.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ops.audit import RunReport
from ops.publish_requests import RequestPublisher
from shared.db import Database, rows_as_dicts
from shared.envelope import Envelope
from shared.publisher import PublishError, PubSubPublisher

REPLAYED_ATTR = "replayed"


def failed_events(db: Database, *, event_types: tuple[str, ...] = (), tenants: tuple[str, ...] = (),
                  since: datetime | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Events whose last attempt failed, newest first."""
    where = ["status = 'failed'"]
    args: list[Any] = []
    if event_types:
        where.append("event_type = ANY(%s::text[])")
        args.append(list(event_types))
    if tenants:
        where.append("tenant_id = ANY(%s::text[])")
        args.append(list(tenants))
    if since is not None:
        where.append("updated_at >= %s")
        args.append(since)
    args.append(limit)
    sql = ("SELECT event_id, event_type, tenant_id AS tenant, correlation_id, attempts, last_error, "  # noqa: S608
           f"created_at, updated_at FROM events WHERE {' AND '.join(where)} ORDER BY updated_at DESC LIMIT %s")
    with db.transaction() as cur:  # the clauses are fixed strings above; values go as parameters
        cur.execute(sql, tuple(args))
        return rows_as_dicts(cur)


def _stored(db: Database, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    # The ids go as one JSON array: pg8000 escapes a text[] parameter a character at a time in Python,
    # ~15% of a replay of thousands (cProfile).
    with db.transaction() as cur:
        cur.execute("SELECT event_id, status, envelope FROM events WHERE event_id IN "
                    "(SELECT jsonb_array_elements_text(%s::jsonb)) AND status <> 'duplicate'", (json.dumps(event_ids),))
        return {row["event_id"]: row for row in rows_as_dicts(cur)}


BATCH = 100  # messages per Publish request
IN_FLIGHT = 2  # batches awaiting confirmation at once: one is published while another's confirmations come


def replay(db: Database, publisher: PubSubPublisher, event_ids: list[str], *, dry_run: bool = False,
           report: RunReport | None = None) -> RunReport:
    """Republish the stored envelope of each failed event; others are reported and left alone.

    Published in batches, each one Publish request whose answer confirms all of it, the next
    batch going out while the previous one's confirmations come in, so a replay of thousands
    runs at the speed of raw publishing, not one round trip per event."""
    report = report if report is not None else RunReport()
    stored = _stored(db, event_ids)
    ready: list[Envelope] = []
    for event_id in dict.fromkeys(event_ids):  # once each, in the order given
        row = stored.get(event_id)
        if row is None:
            report.skipped += 1
            report.note("skipped", event_id, None, reason="no such event in the ledger")
            continue
        envelope = Envelope.model_validate(row["envelope"])
        if row["status"] != "failed":
            report.skipped += 1
            report.note("skipped", event_id, envelope.correlation_id,
                        reason=f"status is {row['status']}; only failed events are replayed")
            continue
        report.matched += 1
        if dry_run:
            report.would_move += 1
            report.note("would_move", event_id, envelope.correlation_id, event_type=envelope.event_type)
            continue
        ready.append(envelope)
    batches = [ready[start:start + BATCH] for start in range(0, len(ready), BATCH)]
    messages = [[(publisher.topology.event_type(e.event_type).topic, e.to_bytes(),
                  {**e.attributes(), REPLAYED_ATTR: "true"}) for e in batch] for batch in batches]
    with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="replay-publish") as publishing:
        # In order, IN_FLIGHT at a time.
        answered = publishing.map(RequestPublisher(publisher).publish_raw_batch, messages)
        for batch, results in zip(batches, answered, strict=True):
            _report(report, batch, results)
    return report


def _report(report: RunReport, batch: list[Envelope], results: list[str | PublishError]) -> None:
    """Each message's outcome: moved with its new message id, or failed with why."""
    for envelope, result in zip(batch, results, strict=True):
        if isinstance(result, PublishError):
            report.failed += 1
            report.errors.append(f"{envelope.event_id}: {result}")
            report.note("failed", envelope.event_id, envelope.correlation_id, reason=str(result))
            continue
        report.moved += 1
        report.note("moved", envelope.event_id, envelope.correlation_id, event_type=envelope.event_type,
                    new_message_id=result)
