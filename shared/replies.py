"""`reply_requested` -> the lead's WhatsApp, then the outbound message in Postgres.

Runs inside the ledger's transaction (see shared/writers/ledger.py): the reply's
event_id is deterministic per inbound message and kind, so a redelivered or repeated
request is a `duplicate` and is never sent twice. A provider failure raises, so Pub/Sub
retries, then dead-letters it where `ctower` can redrive it.
"""

from __future__ import annotations

from datetime import datetime

from shared.assistant.config import get_tenant
from shared.db import Cursor
from shared.envelope import Envelope
from shared.log import get_logger
from shared.payloads import ReplyRequested
from shared.senders import send_text

log = get_logger(__name__)


def _person_took_over(cur: Cursor, tenant: str, conversation_id: str, requested_at: datetime) -> bool:
    """A person has the conversation since before this reply was decided (the reply is stale)."""
    cur.execute("SELECT handled_by FROM conversations WHERE id = %s AND tenant_id = %s", (conversation_id, tenant))
    row = cur.fetchone()
    if row is None or row[0] != "human":
        return False
    cur.execute("SELECT 1 FROM handoffs WHERE conversation_id = %s AND tenant_id = %s AND handled_by = 'human' "
                "AND created_at < %s LIMIT 1", (conversation_id, tenant, requested_at))
    return cur.fetchone() is not None


def apply_reply_requested(cur: Cursor, envelope: Envelope) -> None:
    reply = envelope.typed_payload()
    assert isinstance(reply, ReplyRequested)
    conversation_id = str(reply.conversation_id)
    stale = reply.kind not in ("handoff", "human")  # a person's own reply is never stale
    if stale and _person_took_over(cur, envelope.tenant, conversation_id, envelope.occurred_at):
        log.info("not sent: a person took over the conversation", extra={"event_status": "skipped"})
        return
    settings = get_tenant(envelope.tenant).settings.senders
    sent = send_text(settings, reply.provider, reply.phone, reply.text)
    provider_message_id = sent.provider_message_id or f"ct-{envelope.event_id}"
    cur.execute(
        "INSERT INTO messages (tenant_id, conversation_id, lead_id, provider, provider_message_id, direction, "
        "sender_phone, message_type, body, sent_at, event_id, correlation_id, sent_by, sent_by_user) "
        "VALUES (%s, %s, %s, %s, %s, 'outbound', %s, 'text', %s, now(), %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, provider, provider_message_id) DO UPDATE SET sent_by = EXCLUDED.sent_by, "
        "sent_by_user = EXCLUDED.sent_by_user",
        (envelope.tenant, conversation_id, str(reply.lead_id), reply.provider, provider_message_id, reply.phone,
         reply.text, envelope.event_id, envelope.correlation_id, "human" if reply.kind == "human" else "assistant",
         str(reply.sent_by_user) if reply.sent_by_user else None),
    )
    cur.execute("UPDATE conversations SET last_message_at = GREATEST(last_message_at, now()) "
                "WHERE id = %s AND tenant_id = %s", (conversation_id, envelope.tenant))
    log.info("reply sent (%s) via %s", reply.kind, reply.provider, extra={"event_status": "sent"})
