"""`reply_requested` -> the lead's WhatsApp, exactly once, then the outbound message in Postgres.

1. the outbox row is claimed and committed (shared/outbox.py) BEFORE the provider is called;
2. the provider is called (the tenant's sender for the conversation's provider), paced per
   sending number;
3. the ledger records the event and, in the same transaction, the outbox row becomes `sent`
   and the `messages` row is written.
If 3 fails after 2 succeeded (the crash window), the redelivery finds the row `sending`
and reconciles from the provider's callbacks instead of sending the text again. A refused
send raises, so Pub/Sub retries, then dead-letters it where `ctower` can redrive it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared import limits, outbox, subscriber
from shared.db import Cursor, Database
from shared.envelope import Envelope
from shared.log import get_logger
from shared.payloads import ReplyRequested
from shared.senders import SendError, SentMessage, send_text
from shared.writers import ledger

log = get_logger(__name__)
FUNCTION = "reply_sender"
Send = Callable[[ReplyRequested, str], SentMessage]  # (reply, callback_ref) -> what the provider answered


class OutcomeUnknown(RuntimeError):
    """An earlier attempt's send may have gone out and the provider has not said yet; retried later."""


def provider_send(tenant: str) -> Send:
    """The real port: the tenant's configured sender for the reply's provider."""
    from shared.assistant.config import get_tenant

    settings = get_tenant(tenant).settings.senders

    def send(reply: ReplyRequested, callback_ref: str) -> SentMessage:
        return send_text(settings, reply.provider, reply.phone, reply.text, callback_ref)

    return send


def provider_pace(db: Database, tenant: str) -> Callable[[ReplyRequested], None]:
    """Wait for the sending number's next slot (tenant_limits.sends_per_minute_per_number)."""
    from shared.assistant.config import get_tenant

    settings = get_tenant(tenant).settings.senders

    def pace(reply: ReplyRequested) -> None:
        waited = limits.pace(db, settings.sender_number(reply.provider),
                             limits.limits_for(db, tenant).sends_per_minute_per_number)
        if waited:
            log.info("paced: waited %.1fs for the sending number's next slot", waited)

    return pace


def run(cloud_event: Any) -> str:
    """Entry for the deployed function: the one subscriber runner, with this module's send in place of a writer."""
    return subscriber.run(cloud_event, function=FUNCTION, processor=_processor)


def _processor(db: Database) -> subscriber.Process:
    def process(envelope: Envelope, message_id: str | None) -> ledger.Result:
        return handle(envelope, message_id, db=db, send=provider_send(envelope.tenant),
                      pace=provider_pace(db, envelope.tenant))

    return process


def handle(envelope: Envelope, message_id: str | None, *, db: Database, send: Send,
           pace: Callable[[ReplyRequested], None] | None = None) -> ledger.Result:
    """Send one reply at most once; returns the ledger's result, raises to be retried."""
    reply = envelope.typed_payload()
    assert isinstance(reply, ReplyRequested)
    with db.transaction() as cur:
        # A handoff notice and a person's own reply (the console) are never stale.
        stale = reply.kind not in ("handoff", "human") and _person_took_over(
            cur, envelope.tenant, str(reply.conversation_id), envelope.occurred_at)
    if stale:
        log.info("not sent: a person took over the conversation", extra={"event_status": "skipped"})
        return ledger.process(db, envelope, message_id, lambda cur, env: None)
    slot = outbox.claim(db, envelope, reply)
    if slot.action == "wait":
        error = OutcomeUnknown("an earlier send may have gone out; waiting for the provider's status or echo")
        ledger.record_failure(db, envelope, message_id, error)
        log.warning("%s", error, extra={"event_status": "reconciling"})
        raise error
    provider_message_id, how = slot.provider_message_id, slot.how
    if slot.action == "send":
        try:
            if pace is not None:
                pace(reply)  # PacingBusy (a SendError, nothing sent): the row goes back to pending
            provider_message_id = send(reply, slot.callback_ref).provider_message_id
        except SendError as exc:
            outbox.send_failed(db, envelope, exc, maybe_sent=exc.maybe_sent)
            attempts = ledger.record_failure(db, envelope, message_id, exc)
            # Like the ledger's: the failed-events metric counts `failed` once per event, not per retry.
            log.error("send failed%s; Pub/Sub will retry: %s", " (outcome unknown)" if exc.maybe_sent else "", exc,
                      extra={"event_status": "failed_again" if attempts and attempts > 1 else "failed",
                             "error_type": type(exc).__name__})
            raise
    elif how:
        log.warning("an earlier send went out (%s); recorded, not sent again", how,
                    extra={"event_status": "reconciled"})
    final_id = provider_message_id or f"ct-{envelope.event_id}"
    result = ledger.process(db, envelope, message_id, lambda cur, env: _record(cur, env, reply, final_id, how))
    log.info("reply %s (%s) via %s", "sent" if slot.action == "send" else "recorded", reply.kind, reply.provider,
             extra={"event_status": "sent" if slot.action == "send" else result.value})
    return result


def _record(cur: Cursor, envelope: Envelope, reply: ReplyRequested, provider_message_id: str,
            reconciled: str | None) -> None:
    from shared.statuses import apply_waiting

    conversation_id = str(reply.conversation_id)
    outbox.record_sent(cur, envelope, provider_message_id, reconciled)
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
    apply_waiting(cur, envelope.tenant, reply.provider, provider_message_id)


def _person_took_over(cur: Cursor, tenant: str, conversation_id: str, requested_at: datetime) -> bool:
    """A person has the conversation since before this reply was decided (the reply is stale)."""
    cur.execute("SELECT handled_by FROM conversations WHERE id = %s AND tenant_id = %s", (conversation_id, tenant))
    row = cur.fetchone()
    if row is None or row[0] != "human":
        return False
    cur.execute("SELECT 1 FROM handoffs WHERE conversation_id = %s AND tenant_id = %s AND handled_by = 'human' "
                "AND created_at < %s LIMIT 1", (conversation_id, tenant, requested_at))
    return cur.fetchone() is not None
