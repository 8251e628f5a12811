"""The event ledger: one idempotent statement per envelope.

Record the event as processed -> apply the write, both in one statement (an implicit
transaction, one round trip): `ct_ledger_enter` and the event type's SQL function.
A redelivery of an event already processed is recorded as a `duplicate` row (one
per Pub/Sub message, so its correlation id stays traceable) and acknowledged. A
write that fails is rolled back whole, then the failure and attempt count are
recorded in a transaction of their own, and the error is raised so Pub/Sub retries
(and, after the subscription's attempts, dead-letters). A failure that cannot be
recorded still logs one line with the event id that the failed-events metric counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from shared import storable
from shared.db import Cursor, Database
from shared.envelope import ATTRIBUTE_FIELDS, Envelope
from shared.log import get_logger
from shared.writers.calls import EVENT_ROW, Writer, event_values, execute

log = get_logger(__name__)

MAX_ERROR_CHARS = 2000


class Result(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"


Apply = Callable[[Cursor, Envelope], None]  # a write in Python, in the ledger's transaction


def process(db: Database, envelope: Envelope, message_id: str | None, apply: Writer | Apply) -> Result:
    """Write the envelope once; raises (after recording the failure) if it cannot.

    An event type's Writer is one statement in an implicit transaction: the bookkeeping
    (ct_ledger_enter: a first delivery is inserted as `processed` straight away, the statement
    makes that true or rolls it back), then the write when this delivery is the one to apply.
    Any other `apply` (reply_sender's) runs after the same bookkeeping in a transaction.
    """
    try:
        if isinstance(apply, Writer):
            return _write(db, envelope, message_id, apply)
        with db.transaction() as cur:
            execute(cur, f"SELECT ct_ledger_enter({EVENT_ROW})", event_values(envelope, message_id))
            if not cur.fetchone()[0]:
                return Result.DUPLICATE
            apply(cur, envelope)
            return Result.PROCESSED
    except Exception as exc:
        attempts = record_failure(db, envelope, message_id, exc)
        if attempts == 0:
            log.warning("write failed, but a concurrent delivery has processed the event; the retry will be "
                        "a duplicate: %s", exc, extra={"event_status": "superseded", "error_type": type(exc).__name__})
            raise
        if attempts is None:
            # No row to show it: this line is the trace. `failed` is what the failed-events metric counts
            # (terraform/monitoring.tf); with nothing recorded it cannot tell a retry from a first failure.
            log.error("write failed and the failure could not be recorded (is the database reachable?); "
                      "Pub/Sub will retry, then dead-letter: %s", exc,
                      extra={"event_status": "failed", "recorded": False, "event_id": envelope.event_id,
                             "event_type": envelope.event_type, "error_type": type(exc).__name__})
            raise
        # The failed-events metric counts `event_status: failed`, once per event, not once per retry.
        status = "failed" if attempts == 1 else "failed_again"
        log.error("write failed (attempt %s); Pub/Sub will retry, then dead-letter: %s", attempts, exc,
                  extra={"event_status": status, "attempts": attempts, "event_id": envelope.event_id,
                         "event_type": envelope.event_type, "error_type": type(exc).__name__})
        raise


def _write(db: Database, envelope: Envelope, message_id: str | None, writer: Writer) -> Result:
    """One round trip (two for a writer that fetches: an event already processed is not fetched again)."""
    call = None if writer.fetches and _processed(db, envelope.event_id) else writer.call(envelope)
    # CASE evaluates the write only when the ledger says this delivery is the one to apply.
    then = "'processed'" if call is None else f"(SELECT 'processed' FROM {call.sql('e.ev')})"  # noqa: S608
    sql = (f"SELECT CASE WHEN ct_ledger_enter(e.ev) THEN {then} ELSE 'duplicate' END "  # noqa: S608 - Call checks
           f"FROM (SELECT {EVENT_ROW} AS ev) e")
    with db.autocommit() as cur:
        execute(cur, sql, (*(call.arguments if call else ()), *event_values(envelope, message_id)))
        return Result(cur.fetchone()[0])


def _processed(db: Database, event_id: str) -> bool:
    with db.autocommit() as cur:
        cur.execute("SELECT 1 FROM events WHERE event_id = %s AND status = 'processed'", (event_id,))
        return cur.fetchone() is not None


_RECORD_FAILURE = """
INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, message_id, envelope, occurred_at,
                    received_at, status, attempts, last_error)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, 'failed', 1, %s)
ON CONFLICT (event_id) WHERE status <> 'duplicate' DO UPDATE SET
    status = 'failed', attempts = events.attempts + 1, last_error = EXCLUDED.last_error,
    message_id = EXCLUDED.message_id, updated_at = now()
WHERE events.status <> 'processed'
RETURNING attempts
"""
# The same, for an envelope Postgres would not take as it is: every value cleaned, times as text.
_RECORD_SANITISED = _RECORD_FAILURE.replace("%s::jsonb, %s, %s,", "%s::jsonb, %s::timestamptz, %s::timestamptz,")


def record_failure(db: Database, envelope: Envelope, message_id: str | None, exc: BaseException) -> int | None:
    """The event's attempts so far.

    0 when a concurrent delivery of the same event has processed it meanwhile (its row is
    left alone); None when nothing could be recorded (the database is down: Pub/Sub still
    retries). When the envelope itself is what Postgres refuses, a cleaned copy is recorded,
    so the failure shows in `ctower events failed` and `trace`, and replaying it can work.
    """
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    for sanitised in (False, True):
        try:
            params = _sanitised_params(envelope, message_id, error) if sanitised \
                else (*event_values(envelope, message_id), error)
            with db.transaction() as cur:
                cur.execute(_RECORD_SANITISED if sanitised else _RECORD_FAILURE, params)
                row = cur.fetchone()
                return 0 if row is None else int(row[0])
        except Exception as record_exc:
            log.warning("could not record the failure: %s", record_exc,
                        extra={"error_type": type(record_exc).__name__})
    return None


def _sanitised_params(envelope: Envelope, message_id: str | None, error: str) -> tuple[object, ...]:
    """The failure's parameters, with what Postgres refuses cleaned away (a last resort: the envelope broke
    the edge's rule)."""
    data = envelope.model_dump(mode="json")
    try:
        body = json.dumps(storable.normalise(data))
    except (ValueError, RecursionError) as exc:  # Unstorable: numbers or depth; keep what identifies it
        body = json.dumps({**{k: storable.clean_text(str(data.get(k))) for k in ATTRIBUTE_FIELDS},
                           "payload_unstorable": storable.clean_text(str(exc))[:500]})
    text = storable.clean_text
    return (text(envelope.event_id), text(envelope.event_type), text(envelope.tenant), text(envelope.source),
            text(envelope.correlation_id), message_id, body, envelope.occurred_at.isoformat(),
            envelope.received_at.isoformat(), text(f"{error} (envelope cleaned for storage)")[:MAX_ERROR_CHARS])
