"""The reply outbox: one `outbound_messages` row per reply, committed before the provider is called.

A send whose outcome is unknown (the provider accepted, then the commit failed or the
answer was lost) leaves the row in `sending`. The next attempt does not send again: it
looks for the provider's own word that the message went out (a status callback carrying
our `callback_ref`, or a status for a message to this lead reported since the send began
that nothing else claims) and records that. Only when the provider has said nothing for
REPLY_RECONCILE_SECONDS is the message taken as not sent and sent again.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Literal

from shared.db import Cursor, Database
from shared.envelope import Envelope
from shared.payloads import ReplyRequested

DEFAULT_RECONCILE_SECONDS = 120.0
MAX_ERROR_CHARS = 2000
SENT_OR_LATER = ("sent", "delivered", "read", "failed")


@dataclass(frozen=True)
class Slot:
    """What this attempt must do with the reply: send it, or record what the provider already did."""

    action: Literal["send", "done", "wait"]
    callback_ref: str
    provider_message_id: str | None = None
    how: str | None = None  # for `done` after an unknown outcome: the evidence found


def reconcile_seconds() -> float:
    return float(os.environ.get("REPLY_RECONCILE_SECONDS") or DEFAULT_RECONCILE_SECONDS)


def claim(db: Database, envelope: Envelope, reply: ReplyRequested) -> Slot:
    """Record the reply (once) and decide this attempt's action, atomically across concurrent deliveries."""
    key = (envelope.tenant, envelope.event_id)
    with db.transaction() as cur:
        cur.execute("INSERT INTO outbound_messages (tenant_id, reply_event_id, conversation_id, lead_id, provider, "
                    "phone, body, kind, callback_ref, status, correlation_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s) ON CONFLICT DO NOTHING",
                    (*key, str(reply.conversation_id), str(reply.lead_id), reply.provider, reply.phone, reply.text,
                     reply.kind, f"ct-{uuid.uuid4().hex}", envelope.correlation_id))
        cur.execute("UPDATE outbound_messages SET status = 'sending', send_started_at = now(), "
                    "attempts = attempts + 1, "
                    "last_error = NULL, updated_at = now() WHERE tenant_id = %s AND reply_event_id = %s "
                    "AND status = 'pending' RETURNING callback_ref", key)
        row = cur.fetchone()
        if row is not None:
            return Slot("send", str(row[0]))
        cur.execute("SELECT status, callback_ref, provider_message_id FROM outbound_messages "
                    "WHERE tenant_id = %s AND reply_event_id = %s FOR UPDATE", key)
        status, callback_ref, provider_message_id = cur.fetchone()
        if status in SENT_OR_LATER:
            return Slot("done", str(callback_ref), provider_message_id)
        return _reconcile(cur, envelope, str(callback_ref))


def _reconcile(cur: Cursor, envelope: Envelope, callback_ref: str) -> Slot:
    """The last attempt's send has an unknown outcome: find the provider's evidence, wait, or send again."""
    key = (envelope.tenant, envelope.event_id)
    cur.execute("SELECT provider_message_id FROM message_statuses WHERE callback_ref = %s ORDER BY id LIMIT 1",
                (callback_ref,))
    row = cur.fetchone()
    if row is not None:
        return Slot("done", callback_ref, str(row[0]), "status callback")
    # A status for a message to this lead, reported since our send began, that no reply or stored
    # message claims: the provider's word on the send whose answer we lost.
    cur.execute("SELECT s.provider_message_id FROM outbound_messages o JOIN message_statuses s "
                "ON s.tenant_id = o.tenant_id AND s.provider = o.provider AND s.recipient = o.phone "
                "AND s.created_at >= o.send_started_at WHERE o.tenant_id = %s AND o.reply_event_id = %s "
                "AND NOT EXISTS (SELECT 1 FROM outbound_messages x WHERE x.tenant_id = s.tenant_id "
                "AND x.provider = s.provider AND x.provider_message_id = s.provider_message_id) "
                "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = s.tenant_id AND m.provider = s.provider "
                "AND m.provider_message_id = s.provider_message_id) ORDER BY s.id LIMIT 1", key)
    row = cur.fetchone()
    if row is not None:
        return Slot("done", callback_ref, str(row[0]), "status to this lead")
    cur.execute("UPDATE outbound_messages SET send_started_at = now(), attempts = attempts + 1, updated_at = now() "
                "WHERE tenant_id = %s AND reply_event_id = %s AND status = 'sending' "
                "AND send_started_at < now() - make_interval(secs => %s) RETURNING 1", (*key, reconcile_seconds()))
    if cur.fetchone() is not None:
        return Slot("send", callback_ref, how="no word from the provider; taken as not sent")
    return Slot("wait", callback_ref)


def send_failed(db: Database, envelope: Envelope, error: BaseException, *, maybe_sent: bool) -> None:
    """The provider refused (send again on the next attempt) or gave no answer (reconcile first)."""
    with db.transaction() as cur:
        cur.execute("UPDATE outbound_messages SET status = CASE WHEN %s THEN status ELSE 'pending' END, "
                    "last_error = %s, updated_at = now() WHERE tenant_id = %s AND reply_event_id = %s "
                    "AND status = 'sending'",
                    (maybe_sent, f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS], envelope.tenant,
                     envelope.event_id))


def record_sent(cur: Cursor, envelope: Envelope, provider_message_id: str, reconciled: str | None) -> None:
    """Inside the ledger's transaction: the reply went out with this provider id."""
    cur.execute("UPDATE outbound_messages SET status = CASE WHEN status IN ('pending', 'sending') THEN 'sent' "
                "ELSE status END, provider_message_id = %s, sent_at = COALESCE(sent_at, now()), reconciled = %s, "
                "last_error = NULL, updated_at = now() WHERE tenant_id = %s AND reply_event_id = %s",
                (provider_message_id, reconciled, envelope.tenant, envelope.event_id))
