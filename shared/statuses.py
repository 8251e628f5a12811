"""`message_status` -> the outbound message's delivery state, in order (ct_message_status).

States only move forward: sent < delivered < failed < read (a late `delivered` never
overwrites `read` or `failed`; a `read` is the lead's own proof and wins over a reported
failure). Every status is kept in `message_statuses` (applied or not), so the trace shows
them all. A status for a reply whose provider id is not recorded yet (the outbox's crash
window) waits there, and `apply_waiting` applies it when the id is recorded; one carrying
the outbox's callback_ref (Cloud API providers) finds its reply directly.
"""

from __future__ import annotations

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import MessageStatus
from shared.writers.calls import Call


def apply_message_status(envelope: Envelope, status: MessageStatus) -> Call:
    return Call("ct_message_status", (status.provider, status.provider_message_id, status.status, status.reason,
                                      status.callback_ref, status.recipient,
                                      status.occurred_at or envelope.occurred_at))


def apply_waiting(cur: Cursor, tenant: str, provider: str, provider_message_id: str) -> None:
    """Apply statuses that arrived before the reply's provider id was recorded, oldest first."""
    cur.execute("SELECT ct_apply_waiting(%s, %s, %s)", (tenant, provider, provider_message_id))
