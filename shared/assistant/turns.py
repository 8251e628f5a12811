"""The assistant's own idempotency record: one `assistant_turns` row per inbound message.

The `events` ledger belongs to the conversations writer (keyed by event_id, one row per
event); the assistant, a second subscriber of the same event, keeps its outcome here,
keyed by (tenant, inbound event id): answered, superseded, skipped, handoff, over
budget, and whether the fallback already went out.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.db import Database
from shared.envelope import Envelope

FINAL = ("answered", "superseded", "skipped", "handoff", "over_budget")
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


def claim_fallback(db: Database, envelope: Envelope) -> bool:
    """True exactly once per inbound message: the caller sends the fallback."""
    with db.transaction() as cur:
        cur.execute("UPDATE assistant_turns SET fallback_sent_at = now(), updated_at = now() "
                    "WHERE tenant_id = %s AND inbound_event_id = %s AND fallback_sent_at IS NULL RETURNING 1",
                    (envelope.tenant, envelope.event_id))
        return cur.fetchone() is not None


def release_fallback(db: Database, envelope: Envelope) -> None:
    """The fallback could not be published after all: let the next attempt send it."""
    with db.transaction() as cur:
        cur.execute("UPDATE assistant_turns SET fallback_sent_at = NULL WHERE tenant_id = %s AND inbound_event_id = %s",
                    (envelope.tenant, envelope.event_id))


def record_error(db: Database, envelope: Envelope, error: BaseException) -> None:
    """Best effort, like the ledger's: the caller raises the original error anyway."""
    try:
        with db.transaction() as cur:
            cur.execute("UPDATE assistant_turns SET last_error = %s, updated_at = now() "
                        "WHERE tenant_id = %s AND inbound_event_id = %s",
                        (f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS], envelope.tenant, envelope.event_id))
    except Exception:  # noqa: S110 - the original error is what the caller raises
        pass
