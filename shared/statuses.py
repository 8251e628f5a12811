"""`message_status` -> the outbound message's delivery state, in order.

States only move forward: sent < delivered < failed < read (a late `delivered` never
overwrites `read` or `failed`; a `read` is the lead's own proof and wins over a reported
failure). Every status is kept in `message_statuses` (applied or not), so the trace shows
them all. A status for a reply whose provider id is not recorded yet (the outbox's crash
window) waits there, and `apply_waiting` applies it when the id is recorded; one carrying
the outbox's callback_ref (Cloud API providers) finds its reply directly.
"""

from __future__ import annotations

from datetime import datetime

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import MessageStatus

RANK = {"pending": 0, "sending": 0, "sent": 1, "delivered": 2, "failed": 3, "read": 4}
_STAMP = {"sent": "sent_at", "delivered": "delivered_at", "read": "read_at", "failed": "failed_at"}


def apply_message_status(cur: Cursor, envelope: Envelope, status: MessageStatus) -> None:
    at = status.occurred_at or envelope.occurred_at
    cur.execute("INSERT INTO message_statuses (tenant_id, provider, provider_message_id, status, reason, callback_ref, "
                "recipient, occurred_at, event_id, correlation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING id",
                (envelope.tenant, status.provider, status.provider_message_id, status.status, status.reason,
                 status.callback_ref, status.recipient, at, envelope.event_id, envelope.correlation_id))
    row = cur.fetchone()
    if row is None:
        return
    # A reply still `sending` is left to reply_sender's reconciliation, which records it and
    # then applies what waited here (apply_waiting).
    cur.execute("SELECT reply_event_id FROM outbound_messages WHERE tenant_id = %s AND ((provider = %s "
                "AND provider_message_id = %s) OR callback_ref = %s) AND status NOT IN ('pending', 'sending') "
                "FOR UPDATE", (envelope.tenant, status.provider, status.provider_message_id, status.callback_ref))
    target = cur.fetchone()
    if target is not None:
        _move(cur, envelope.tenant, str(target[0]), int(row[0]), status.status, status.reason, at)


def apply_waiting(cur: Cursor, tenant: str, provider: str, provider_message_id: str) -> None:
    """Apply statuses that arrived before the reply's provider id was recorded, oldest first."""
    cur.execute("SELECT o.reply_event_id, s.id, s.status, s.reason, s.occurred_at FROM message_statuses s "
                "JOIN outbound_messages o ON o.tenant_id = s.tenant_id AND o.provider = s.provider "
                "AND o.provider_message_id = s.provider_message_id WHERE s.tenant_id = %s AND s.provider = %s "
                "AND s.provider_message_id = %s AND NOT s.applied ORDER BY s.occurred_at, s.id",
                (tenant, provider, provider_message_id))
    for reply_event_id, status_id, state, reason, at in cur.fetchall():
        _move(cur, tenant, str(reply_event_id), int(status_id), str(state), reason, at)


def _move(cur: Cursor, tenant: str, reply_event_id: str, status_id: int, state: str, reason: str | None,
          at: datetime) -> None:
    cur.execute("SELECT status FROM outbound_messages WHERE tenant_id = %s AND reply_event_id = %s",
                (tenant, reply_event_id))
    current = str(cur.fetchone()[0])
    forward = RANK[state] > RANK[current]
    stamp = _STAMP[state]
    cur.execute(f"UPDATE outbound_messages SET {stamp} = COALESCE({stamp}, %s), "  # noqa: S608 - fixed column names
                "status = CASE WHEN %s THEN %s ELSE status END, "
                "failure_reason = CASE WHEN %s = 'failed' THEN COALESCE(%s, failure_reason) ELSE failure_reason END, "
                "updated_at = now() WHERE tenant_id = %s AND reply_event_id = %s",
                (at, forward, state, state, reason, tenant, reply_event_id))
    cur.execute("UPDATE message_statuses SET applied = %s WHERE id = %s", (forward, status_id))
