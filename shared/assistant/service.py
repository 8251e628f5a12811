"""The `assistant` subscriber: one pushed message_received -> at most one answer.

Its own subscription on message_received, so writing a message and answering it fail
and retry independently. Per inbound message (see `turns` for the idempotency record):

* outbound and not sent by the assistant -> a seller wrote: hand the conversation to people;
* debounce: wait ASSISTANT_SETTLE_SECONDS, then answer only if this is still the lead's
  latest message (a later message's turn answers them all, with the full history);
* a conversation handled by people is left alone;
* the reply is published as `reply_requested` with an event_id derived from the inbound
  event id, so however often this runs, the lead gets one answer;
* the model down or slow -> the tenant's fallback once per conversation, then raise so Pub/Sub
  retries (for hours: the subscription's own retry policy in the topology); the late answer
  apologises for the wait and answers everything the lead wrote meanwhile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared import limits, subscriber
from shared.assistant import budget, catalog, facts, handoff, turns
from shared.assistant.config import TenantAssistant, get_tenant
from shared.assistant.context import Context, lead_texts, load
from shared.assistant.engine import Decision, decide
from shared.assistant.llm import LanguageModel, ModelUnavailable
from shared.db import Database
from shared.envelope import Envelope, build_envelope
from shared.log import get_logger
from shared.payloads import MessageReceived, ReplyRequested, StageChanged
from shared.publisher import EnvelopePublisher

log = get_logger(__name__)
FUNCTION = "assistant"
DEFAULT_SETTLE_SECONDS = 3.0
WRITER_WAIT_SECONDS = 10.0  # how long to wait for the conversations writer to store the message


class NotYetWritten(RuntimeError):
    """The conversations writer has not stored this message yet; Pub/Sub retries the turn."""


def enabled(config: TenantAssistant) -> bool:
    """ASSISTANT_ENABLED=false turns it off everywhere (a stack without OpenAI); `enabled` per tenant."""
    switch = (os.environ.get("ASSISTANT_ENABLED") or "true").strip().lower()
    return switch not in ("0", "false", "no", "off") and config.settings.enabled


def settle_seconds() -> float:
    return float(os.environ.get("ASSISTANT_SETTLE_SECONDS") or DEFAULT_SETTLE_SECONDS)


def run(cloud_event: Any) -> str:
    """Entry for the deployed function: the one subscriber runner, with a turn in place of a writer.

    An undecodable or misrouted message is acknowledged here, not retried: the conversations
    writer's subscription on the same topic dead-letters it, and one copy there is enough.
    """
    return subscriber.run(cloud_event, function=FUNCTION, processor=_processor, report="assistant turn: %s",
                          acknowledge_poison="the conversations writer's subscription dead-letters it")


def _processor(db: Database) -> subscriber.Process:
    """The instance's publisher and model, and a turn's own bookkeeping (`turns`) instead of the ledger."""
    from shared.assistant.llm import get_model
    from shared.publisher import get_publisher

    def process(envelope: Envelope, message_id: str | None) -> str:
        try:
            return handle(envelope, db=db, publisher=get_publisher(), model=get_model())
        except Exception as exc:
            # `failed` once per turn (the failed-events metric), `failed_again` on its retries: an
            # outage of hours is up to 100 deliveries of the same turn.
            again = (turns.attempts(db, envelope) or 1) > 1
            log.error("turn not finished; Pub/Sub will retry: %s", exc,
                      extra={"event_status": "failed_again" if again else "failed", "error_type": type(exc).__name__})
            raise

    return process


def handle(envelope: Envelope, *, db: Database, publisher: EnvelopePublisher, model: LanguageModel,
           settle: float | None = None, sleep: Callable[[float], None] = time.sleep) -> str:
    """Process one inbound delivery; returns what happened, raises to be retried."""
    message = envelope.typed_payload()
    assert isinstance(message, MessageReceived)
    config = get_tenant(envelope.tenant)
    if not enabled(config):
        return "disabled: the assistant is off (ASSISTANT_ENABLED or the tenant's settings)"
    if message.direction == "outbound":
        return _outbound(envelope, message, db, config, sleep)
    if not (message.text or "").strip():
        return "ignored: no text to answer"
    state = turns.begin(db, envelope)
    if state.status in turns.FINAL:
        return f"{state.status}: already handled"
    sleep(settle_seconds() if settle is None else settle)
    ctx = _wait_for_context(db, envelope, message, config, sleep)
    if ctx.handled_by == "human":
        turns.finish(db, envelope, "skipped", detail="a person handles this conversation",
                     conversation_id=ctx.conversation_id, lead_id=ctx.lead_id)
        return "skipped: handled by a person"
    if ctx.latest_inbound_id != message.provider_message_id:
        turns.finish(db, envelope, "superseded", detail=f"newer message {ctx.latest_inbound_id}",
                     conversation_id=ctx.conversation_id, lead_id=ctx.lead_id)
        return "superseded: a newer message will be answered"
    tenant_limits = limits.limits_for(db, envelope.tenant)
    over = limits.exceeded(db, envelope.tenant, tenant_limits)
    if over:  # the message is stored all the same; only the answer is withheld (the alert counts this line)
        turns.finish(db, envelope, "over_limit", detail=over, conversation_id=ctx.conversation_id, lead_id=ctx.lead_id)
        return f"over_limit: tenant over its {over}; not answered"
    daily = budget.effective(config.settings.daily_budget, tenant_limits.assistant_calls_per_day,
                             tenant_limits.assistant_tokens_per_day)
    since = turns.waiting_since_fallback(db, envelope.tenant, ctx.conversation_id)
    products = catalog.search_db(db, envelope.tenant, lead_texts(ctx.history), config.settings.catalog_products)
    try:
        decision = decide(config, ctx.history, ctx.known_facts, model,
                          reserve_call=lambda: budget.reserve_call(db, envelope.tenant, daily),
                          waited=datetime.now(UTC) - since if since else None, products=products)
    except ModelUnavailable as exc:
        budget.release_call(db, envelope.tenant)
        turns.record_error(db, envelope, exc)
        if _fallback_once(envelope, message, ctx, config, db, publisher):
            log.warning("model unavailable; fallback sent, the answer will follow on a retry")
        # Raised so Pub/Sub retries: the assistant's subscription has its own retry policy in the
        # topology (about 16 hours of attempts), so an outage of hours ends in one late answer.
        raise
    if decision.kind == "over_budget":
        _fallback_once(envelope, message, ctx, config, db, publisher)
        turns.finish(db, envelope, "over_budget", detail="daily budget spent; fallback sent",
                     conversation_id=ctx.conversation_id, lead_id=ctx.lead_id)
        return "over_budget: fallback sent"
    return _deliver(envelope, message, ctx, config, decision, db, publisher)


def _wait_for_context(db: Database, envelope: Envelope, message: MessageReceived, config: TenantAssistant,
                      sleep: Callable[[float], None]) -> Context:
    deadline = time.monotonic() + WRITER_WAIT_SECONDS
    while True:
        with db.transaction() as cur:
            ctx = load(cur, tenant=envelope.tenant, provider=message.provider,
                       provider_message_id=message.provider_message_id,
                       limit=config.settings.history_messages, facts=config.settings.lead_facts)
        if ctx is not None:
            return ctx
        if time.monotonic() > deadline:
            raise NotYetWritten(f"message {message.provider_message_id} is not stored yet")
        sleep(0.3)


def _deliver(envelope: Envelope, message: MessageReceived, ctx: Context, config: TenantAssistant,
             decision: Decision, db: Database, publisher: EnvelopePublisher) -> str:
    assert decision.reply is not None
    budget.add_tokens(db, envelope.tenant, decision.tokens)
    kind = "handoff" if decision.kind == "handoff" else "answer"
    reply_id = _publish_reply(publisher, envelope, message, ctx, decision.reply, kind)
    learned = decision.answer.facts if decision.answer else {}
    with db.transaction() as cur:
        facts.apply_facts(cur, tenant=envelope.tenant, lead_id=ctx.lead_id, facts=learned,
                          specs=config.settings.lead_facts, correlation_id=envelope.correlation_id)
        if decision.hands_off:
            reason: handoff.Reason = "lead_asked" if decision.kind == "handoff" else "model"
            handoff.switch(cur, tenant=envelope.tenant, conversation_id=ctx.conversation_id, lead_id=ctx.lead_id,
                           to="human", reason=reason, correlation_id=envelope.correlation_id,
                           event_id=envelope.event_id,
                           detail=decision.answer.intent if decision.answer else None)
    used = f"produtos: {', '.join(p.sku for p in decision.products)}" if decision.products else None
    detail = " ".join(filter(None, [decision.answer.intent if decision.answer else None, decision.guard_note, used]))
    turns.finish(db, envelope, "handoff" if decision.kind == "handoff" else "answered", detail=detail or None,
                 conversation_id=ctx.conversation_id, lead_id=ctx.lead_id, reply_event_id=reply_id,
                 tokens=decision.tokens)
    stage = facts.qualified_stage(config.settings.qualification, {**learned, **ctx.known_facts}, ctx.stage)
    if stage is not None:
        _publish_stage(publisher, envelope, ctx, stage)
    return f"{'handoff' if decision.hands_off else 'answered'}: reply {reply_id}" + (
        f", lead moved to {stage}" if stage else "")


def _fallback_once(envelope: Envelope, message: MessageReceived, ctx: Context, config: TenantAssistant,
                   db: Database, publisher: EnvelopePublisher) -> bool:
    if not turns.claim_fallback(db, envelope, ctx.conversation_id):
        return False
    try:
        _publish_reply(publisher, envelope, message, ctx, config.fallback, "fallback")
    except Exception:
        turns.release_fallback(db, envelope)
        raise
    return True


def _publish_reply(publisher: EnvelopePublisher, envelope: Envelope, message: MessageReceived, ctx: Context,
                   text: str, kind: str) -> str:
    payload = ReplyRequested(conversation_id=UUID(ctx.conversation_id), lead_id=UUID(ctx.lead_id),
                             provider=message.provider, phone=message.phone, chat_id=message.chat_id, text=text,
                             kind=kind, in_reply_to=envelope.event_id)
    reply = build_envelope(event_type="reply_requested", payload=payload, tenant=envelope.tenant,
                           source=FUNCTION, correlation_id=envelope.correlation_id,
                           # A fallback and a handoff notice share the answer's slot: one real message per inbound.
                           source_id=f"{envelope.event_id}:{'fallback' if kind == 'fallback' else 'answer'}",
                           occurred_at=datetime.now(UTC))
    publisher.publish(reply)
    return reply.event_id


def _publish_stage(publisher: EnvelopePublisher, envelope: Envelope, ctx: Context, stage: str) -> None:
    payload = StageChanged(lead_id=UUID(ctx.lead_id), from_stage=ctx.stage, to_stage=stage,
                           reason="qualificado pelo assistente (regras do tenant)")
    publisher.publish(build_envelope(event_type="stage_changed", payload=payload, tenant=envelope.tenant,
                                     source=FUNCTION, correlation_id=envelope.correlation_id,
                                     source_id=f"{envelope.event_id}:stage:{stage}"))


def _outbound(envelope: Envelope, message: MessageReceived, db: Database, config: TenantAssistant,
              sleep: Callable[[float], None]) -> str:
    """A message from the business side: a seller's (not the assistant's) hands the conversation to people."""
    ctx = _wait_for_context(db, envelope, message, config, sleep)
    if ctx.message_sent_by == "assistant" or _echo_of_assistant(db, envelope.tenant, ctx.conversation_id,
                                                               message.text):
        return "ignored: the assistant's own message"
    with db.transaction() as cur:
        switched = handoff.switch(cur, tenant=envelope.tenant, conversation_id=ctx.conversation_id,
                                  lead_id=ctx.lead_id, to="human", reason="seller_message",
                                  correlation_id=envelope.correlation_id, event_id=envelope.event_id)
    return "handoff: a seller wrote" if switched else "ignored: already with a person"


def _echo_of_assistant(db: Database, tenant: str, conversation_id: str, text: str | None) -> bool:
    """The provider echoing a reply the assistant sent (its id may differ from the one the send returned).

    The outbox row is committed before the send, so an echo that overtakes the sender's
    own record is still recognised.
    """
    if not text:
        return False
    with db.transaction() as cur:
        cur.execute("SELECT 1 FROM outbound_messages WHERE tenant_id = %s AND conversation_id = %s AND body = %s "
                    "AND created_at > now() - interval '10 minutes' LIMIT 1", (tenant, conversation_id, text))
        return cur.fetchone() is not None
