"""The assistant's own idempotency record: one `assistant_turns` row per inbound message.

The `events` ledger belongs to the conversations writer (keyed by event_id, one row per
event); the assistant, a second subscriber of the same event, keeps its outcome here,
keyed by (tenant, inbound event id): answered, superseded, skipped, handoff, over
budget, and whether the fallback already went out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.db import Database
from shared.envelope import Envelope

FINAL = ("answered", "superseded", "skipped", "handoff", "over_budget", "over_limit")
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class TurnState:
    status: str
    fallback_sent: bool
    attempts: int


def begin(db: Database, envelope: Envelope) -> TurnState:
    """Record (or count) one more delivery of this inbound message and return where it stands."""
    with db.transaction() as cur:
        cur.execute("INSERT INTO assistant_turns (tenant_id, inbound_event_id, status, attempts, correlation_id) "
                    "VALUES (%s, %s, 'pending', 1, %s) ON CONFLICT (tenant_id, inbound_event_id) DO UPDATE SET "
                    "attempts = assistant_turns.attempts + 1, updated_at = now() "
                    "RETURNING status, fallback_sent_at IS NOT NULL, attempts",
                    (envelope.tenant, envelope.event_id, envelope.correlation_id))
        status, fallback_sent, attempts = cur.fetchone()
        return TurnState(str(status), bool(fallback_sent), int(attempts))


def finish(db: Database, envelope: Envelope, status: str, *, detail: str | None = None,
           conversation_id: str | None = None, lead_id: str | None = None, reply_event_id: str | None = None,
           tokens: int = 0) -> None:
    assert status in FINAL
    with db.transaction() as cur:
        cur.execute("UPDATE assistant_turns SET status = %s, detail = %s, conversation_id = %s, lead_id = %s, "
                    "reply_event_id = %s, tokens = tokens + %s, last_error = NULL, updated_at = now() "
                    "WHERE tenant_id = %s AND inbound_event_id = %s",
                    (status, detail, conversation_id, lead_id, reply_event_id, tokens, envelope.tenant,
                     envelope.event_id))


# A fallback in this conversation that no real answer has followed yet.
_OPEN_FALLBACK = ("FROM assistant_turns o WHERE o.tenant_id = %s AND o.conversation_id = %s "
                  "AND o.fallback_sent_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM assistant_turns a "
                  "WHERE a.tenant_id = o.tenant_id AND a.conversation_id = o.conversation_id "
                  "AND a.status IN ('answered', 'handoff') AND a.updated_at > o.fallback_sent_at)")


def claim_fallback(db: Database, envelope: Envelope, conversation_id: str) -> bool:
    """True at most once per outage and conversation: the caller sends the fallback.

    A lead who writes again while the model is down is not sent a second "we'll answer in
    a moment"; the turn of their latest message answers everything once the model is back.
    """
    with db.transaction() as cur:
        cur.execute("UPDATE assistant_turns SET fallback_sent_at = now(), conversation_id = %s, updated_at = now() "  # noqa: S608
                    "WHERE tenant_id = %s AND inbound_event_id = %s AND fallback_sent_at IS NULL "
                    f"AND NOT EXISTS (SELECT 1 {_OPEN_FALLBACK}) RETURNING 1",
                    (conversation_id, envelope.tenant, envelope.event_id, envelope.tenant, conversation_id))
        return cur.fetchone() is not None


def waiting_since_fallback(db: Database, tenant: str, conversation_id: str) -> datetime | None:
    """When this conversation's open fallback went out (the lead has waited since), or None."""
    with db.transaction() as cur:
        cur.execute(f"SELECT min(o.fallback_sent_at) {_OPEN_FALLBACK}", (tenant, conversation_id))
        row = cur.fetchone()
        return row[0] if row else None


def release_fallback(db: Database, envelope: Envelope) -> None:
    """The fallback could not be published after all: let the next attempt send it."""
    with db.transaction() as cur:
        cur.execute("UPDATE assistant_turns SET fallback_sent_at = NULL WHERE tenant_id = %s AND inbound_event_id = %s",
                    (envelope.tenant, envelope.event_id))


def attempts(db: Database, envelope: Envelope) -> int | None:
    """How many deliveries of this inbound message the assistant has begun; None when unknown."""
    try:
        with db.transaction() as cur:
            cur.execute("SELECT attempts FROM assistant_turns WHERE tenant_id = %s AND inbound_event_id = %s",
                        (envelope.tenant, envelope.event_id))
            row = cur.fetchone()
            return int(row[0]) if row else None
    except Exception:
        return None


def record_error(db: Database, envelope: Envelope, error: BaseException) -> None:
    """Best effort, like the ledger's: the caller raises the original error anyway."""
    try:
        with db.transaction() as cur:
            cur.execute("UPDATE assistant_turns SET last_error = %s, updated_at = now() "
                        "WHERE tenant_id = %s AND inbound_event_id = %s",
                        (f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS], envelope.tenant, envelope.event_id))
    except Exception:  # noqa: S110 - the original error is what the caller raises
        pass
