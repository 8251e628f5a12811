"""The event ledger: one idempotent transaction per envelope.

record the event as processed -> apply the write, both in one transaction.
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

log = get_logger(__name__)

MAX_ERROR_CHARS = 2000


class Result(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"


def _envelope_json(envelope: Envelope) -> str:
    return json.dumps(envelope.model_dump(mode="json"))


_INSERT = """
INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, message_id, status, attempts,
                    last_error, envelope, occurred_at, received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s::jsonb, %s, %s)
"""


_INSERT_PROCESSED = """
INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, message_id, status, attempts,
                    last_error, envelope, occurred_at, received_at, processed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s::jsonb, %s, %s, now())
ON CONFLICT (event_id) WHERE status <> 'duplicate' DO NOTHING RETURNING id
"""


def _params(envelope: Envelope, message_id: str | None, status: str, error: str | None = None) -> tuple[object, ...]:
    return (envelope.event_id, envelope.event_type, envelope.tenant, envelope.source, envelope.correlation_id,
            message_id, status, error, _envelope_json(envelope), envelope.occurred_at, envelope.received_at)


def process(db: Database, envelope: Envelope, message_id: str | None,
            apply: Callable[[Cursor, Envelope], None]) -> Result:
    """Write the envelope once; raises (after recording the failure) if it cannot.

    A first delivery is inserted as `processed` straight away (the transaction makes that
    true or rolls it back), so it costs one statement more than the write itself.
    """
    try:
        with db.transaction() as cur:
            cur.execute(_INSERT_PROCESSED, _params(envelope, message_id, "processed"))
            if cur.fetchone() is None:  # seen before (or a concurrent delivery committed it): look at it
                cur.execute("SELECT status FROM events WHERE event_id = %s AND status <> 'duplicate' FOR UPDATE",
                            (envelope.event_id,))
                row = cur.fetchone()
                if row is None:
                    raise RuntimeError("a concurrent delivery of this event rolled back; retrying")
                if row[0] == "processed":
                    cur.execute(_INSERT + " ON CONFLICT (event_id, message_id) WHERE status = 'duplicate' DO NOTHING",
                                _params(envelope, message_id, "duplicate"))
                    return Result.DUPLICATE
                cur.execute("UPDATE events SET status = 'processed', attempts = attempts + 1, message_id = %s, "
                            "last_error = NULL, processed_at = now(), updated_at = now() "
                            "WHERE event_id = %s AND status <> 'duplicate'", (message_id, envelope.event_id))
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


_RECORD_FAILURE = (_INSERT + " ON CONFLICT (event_id) WHERE status <> 'duplicate' DO UPDATE SET "
                   "status = 'failed', attempts = events.attempts + 1, last_error = EXCLUDED.last_error, "
                   "message_id = EXCLUDED.message_id, updated_at = now() WHERE events.status <> 'processed' "
                   "RETURNING attempts")
# The same, for an envelope Postgres would not take as it is: every value cleaned, times as text.
_RECORD_SANITISED = _RECORD_FAILURE.replace("%s::jsonb, %s, %s)", "%s::jsonb, %s::timestamptz, %s::timestamptz)")


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
                else _params(envelope, message_id, "failed", error)
            with db.transaction() as cur:
                cur.execute(_RECORD_SANITISED if sanitised else _RECORD_FAILURE, params)
                row = cur.fetchone()
                return 0 if row is None else int(row[0])
        except Exception as record_exc:
            log.warning("could not record the failure: %s", record_exc,
                        extra={"error_type": type(record_exc).__name__})
    return None


def _sanitised_params(envelope: Envelope, message_id: str | None, error: str) -> tuple[object, ...]:
    """`_params` with what Postgres refuses cleaned away (a last resort: the envelope broke the edge's rule)."""
    data = envelope.model_dump(mode="json")
    try:
        body = json.dumps(storable.normalise(data))
    except (ValueError, RecursionError) as exc:  # Unstorable: numbers or depth; keep what identifies it
        body = json.dumps({**{k: storable.clean_text(str(data.get(k))) for k in ATTRIBUTE_FIELDS},
                           "payload_unstorable": storable.clean_text(str(exc))[:500]})
    text = storable.clean_text
    return (text(envelope.event_id), text(envelope.event_type), text(envelope.tenant), text(envelope.source),
            text(envelope.correlation_id), message_id, "failed",
            text(f"{error} (envelope cleaned for storage)")[:MAX_ERROR_CHARS], body,
            envelope.occurred_at.isoformat(), envelope.received_at.isoformat())
