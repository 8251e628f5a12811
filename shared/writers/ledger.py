"""The event ledger: one idempotent transaction per envelope.

record the event as processed -> apply the write, both in one transaction.
A redelivery of an event already processed is recorded as a `duplicate` row (one
per Pub/Sub message, so its correlation id stays traceable) and acknowledged. A
write that fails is rolled back whole, then the failure and attempt count are
recorded in a transaction of their own, and the error is raised so Pub/Sub retries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum

from shared.db import Cursor, Database
from shared.envelope import Envelope
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
        # The failed-events metric counts `event_status: failed`, once per event, not once per retry.
        status = "failed" if attempts == 1 else "failed_again" if attempts else "failed_unrecorded"
        log.error("write failed (attempt %s); Pub/Sub will retry: %s", attempts or "?", exc,
                  extra={"event_status": status, "attempts": attempts, "error_type": type(exc).__name__})
        raise


def record_failure(db: Database, envelope: Envelope, message_id: str | None, exc: BaseException) -> int | None:
    """The event's attempts so far.

    0 when a concurrent delivery of the same event has processed it meanwhile (its row is
    left alone); None when the database itself is down (Pub/Sub still retries).
    """
    error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    try:
        with db.transaction() as cur:
            cur.execute(_INSERT + " ON CONFLICT (event_id) WHERE status <> 'duplicate' DO UPDATE SET "
                        "status = 'failed', attempts = events.attempts + 1, last_error = EXCLUDED.last_error, "
                        "message_id = EXCLUDED.message_id, updated_at = now() WHERE events.status <> 'processed' "
                        "RETURNING attempts",
                        _params(envelope, message_id, "failed", error))
            row = cur.fetchone()
            return 0 if row is None else int(row[0])
    except Exception:
        return None
