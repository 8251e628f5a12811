"""Exactly one send, and delivery statuses, against a real Postgres and the providers' stand-in.

The real senders talk HTTP to the stand-in; provider callbacks go through the real source
adapters and the ledger. The crash window (the provider accepted, the commit after it
failed) is a real failed COMMIT: a deferred trigger that raises once, at commit time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ops.localdb import ensure_database
from ops.trace import trace
from shared import replies
from shared.db import Database
from shared.envelope import Envelope, build_envelope
from shared.migrations import migrate
from shared.payloads import MessageReceived, ReplyRequested
from shared.senders import SenderSettings, SentMessage, send_text
from shared.sources import evolution, gupshup, meta_cloud, zapi
from shared.writers import writer_for
from shared.writers.ledger import process
from tests.conftest import query
from tests.standins import ProviderStandIn
from tests.unit.edge_helpers import call, request

pytestmark = pytest.mark.integration

KEYS = {"evolution": "evo-key", "zapi": "zapi-token", "meta": "meta-token", "360dialog": "d360-key",
        "gupshup": "gs-key"}
SENDERS = SenderSettings.model_validate({
    "evolution": {"instance": "pisos", "api_key_secret": "ct-ob-evo"},
    "zapi": {"instance_id": "3C7A", "token_secret": "ct-ob-zapi"},
    "meta": {"phone_number_id": "106540352242922", "access_token_secret": "ct-ob-meta", "version": "v23.0"},
    "360dialog": {"api_key_secret": "ct-ob-d360"},
    "gupshup": {"source": "551140028922", "app_name": "PisosApp", "api_key_secret": "ct-ob-gupshup"},
})
PROVIDERS = ("evolution", "zapi", "meta", "360dialog", "gupshup")

# Fails the COMMIT of the transaction that marks a reply sent, once per `crash_next` call (setval is
# not rolled back with the failed transaction, so the budget is spent exactly once).
CRASH_SQL = """
CREATE SEQUENCE IF NOT EXISTS crash_budget MINVALUE 0 START 0;
CREATE OR REPLACE FUNCTION crash_on_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'sent' AND OLD.status <> 'sent' AND (SELECT last_value FROM crash_budget) > 0 THEN
    PERFORM setval('crash_budget', (SELECT last_value FROM crash_budget) - 1, true);
    RAISE EXCEPTION 'injected: the commit after the send failed';
  END IF;
  RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER crash_after_send AFTER UPDATE ON outbound_messages
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION crash_on_commit();
"""


@pytest.fixture(scope="module")
def db(pg_server_url: str) -> Iterator[Database]:
    database = Database.for_url(ensure_database(pg_server_url, f"ct_outbox_{uuid.uuid4().hex[:8]}"), size=3)
    migrate(database)
    with database.transaction() as cur:
        cur.execute(CRASH_SQL)
    yield database
    database.close()


@pytest.fixture
def providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderStandIn]:
    stand_in = ProviderStandIn(KEYS)
    env = {"CT_OB_EVO": "evo-key", "CT_OB_ZAPI": "zapi-token", "CT_OB_META": "meta-token", "CT_OB_D360": "d360-key",
           "CT_OB_GUPSHUP": "gs-key", "SECRETS_BACKEND": "env", "EVOLUTION_API_URL": stand_in.url,
           "ZAPI_API_URL": stand_in.url, "META_GRAPH_BASE_URL": stand_in.url, "DIALOG360_API_URL": stand_in.url,
           "GUPSHUP_API_URL": stand_in.url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from shared.secrets import reset_store

    reset_store()
    yield stand_in
    reset_store()
    stand_in.close()


def crash_next(db: Database) -> None:
    with db.transaction() as cur:
        cur.execute("SELECT setval('crash_budget', 1, true)")


def send(reply: ReplyRequested, callback_ref: str) -> SentMessage:
    return send_text(SENDERS, reply.provider, reply.phone, reply.text, callback_ref)


def conversation(db: Database, provider: str) -> tuple[str, str, str]:
    """A lead who wrote in through `provider`: (phone, conversation id, lead id)."""
    phone = f"55119{uuid.uuid4().int % 10**8:08d}"
    inbound = MessageReceived(provider=provider, provider_message_id=uuid.uuid4().hex, phone=phone, chat_id=phone,
                              text="oi, quero um orçamento")
    envelope = build_envelope(event_type="message_received", payload=inbound, tenant="default", source=provider,
                              correlation_id=str(uuid.uuid4()), source_id=inbound.provider_message_id)
    process(db, envelope, "m-in", writer_for("message_received"))
    row = query(db, "SELECT c.id, c.lead_id FROM conversations c JOIN leads l ON l.id = c.lead_id "
                "WHERE l.phone = %s", phone)[0]
    return phone, str(row["id"]), str(row["lead_id"])


def reply_for(db: Database, provider: str, text: str = "Olá! Qual a metragem?") -> Envelope:
    phone, conversation_id, lead_id = conversation(db, provider)
    payload = ReplyRequested(conversation_id=uuid.UUID(conversation_id), lead_id=uuid.UUID(lead_id),
                             provider=provider, phone=phone, chat_id=phone, text=text, kind="answer",
                             in_reply_to=uuid.uuid4().hex)
    return build_envelope(event_type="reply_requested", payload=payload, tenant="default", source="assistant",
                          correlation_id=str(uuid.uuid4()), source_id=uuid.uuid4().hex,
                          occurred_at=datetime.now(UTC))


def outbound(db: Database, envelope: Envelope) -> dict[str, Any]:
    return query(db, "SELECT * FROM outbound_messages WHERE reply_event_id = %s", envelope.event_id)[0]


def callback(db: Database, adapt: Any, body: Any) -> None:
    """A provider's webhook through the real adapter, each envelope written by the ledger."""
    response, publisher = call(adapt, request(body))
    assert response.status == 202, response.body
    for envelope in publisher.published:
        process(db, envelope, f"m-{uuid.uuid4().hex[:6]}", writer_for(envelope.event_type))


def cloud_status(message_id: str, status: str, ts: int, callback_ref: str | None = None,
                 errors: list[dict[str, Any]] | None = None, to: str = "5511977776666") -> dict[str, Any]:
    raw: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(ts), "recipient_id": to}
    if callback_ref:
        raw["biz_opaque_callback_data"] = callback_ref
    if errors:
        raw["errors"] = errors
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"}, "statuses": [raw]}}]}]}


def status_webhook(provider: str, message_id: str, word: str, ts: int,
                   to: str = "5511977776666") -> tuple[Any, Any]:
    """(adapter, body) of each provider's status callback, in its own words."""
    if provider == "evolution":
        return evolution.adapt, {"event": "messages.update", "instance": "pisos",
                                 "data": {"keyId": message_id, "remoteJid": f"{to}@s.whatsapp.net", "fromMe": True,
                                          "status": {"sent": "SERVER_ACK", "delivered": "DELIVERY_ACK",
                                                     "read": "READ", "failed": "ERROR"}[word]}}
    if provider == "zapi":
        return zapi.adapt, {"instanceId": "3C7A", "type": "MessageStatusCallback", "ids": [message_id],
                            "status": {"sent": "SENT", "delivered": "RECEIVED", "read": "READ"}[word],
                            "momment": ts * 1000, "phone": to}
    if provider == "gupshup":
        return gupshup.adapt, {"app": "PisosApp", "timestamp": ts * 1000, "version": 2, "type": "message-event",
                               "payload": {"id": message_id, "gsId": message_id, "type": word,
                                           "destination": to,
                                           "payload": {"ts": ts, **({"reason": "Number is not on WhatsApp"}
                                                                    if word == "failed" else {})}}}
    errors = [{"code": 131026, "title": "Message undeliverable"}] if word == "failed" else None
    return meta_cloud.adapter(provider), cloud_status(message_id, word, ts, errors=errors, to=to)


# -- exactly one send ----------------------------------------------------------------------------------------

def test_a_crash_between_the_send_and_the_commit_sends_once_cloud_api_status_reconciles(
        db: Database, providers: ProviderStandIn) -> None:
    reply = reply_for(db, "meta")
    crash_next(db)
    with pytest.raises(Exception, match="injected"):
        replies.handle(reply, "m-1", db=db, send=send)
    assert len(providers.sent) == 1  # the provider accepted it ...
    row = outbound(db, reply)
    assert row["status"] == "sending" and row["provider_message_id"] is None  # ... and we could not record that
    assert query(db, "SELECT status FROM events WHERE event_id = %s", reply.event_id)[0]["status"] == "failed"

    with pytest.raises(replies.OutcomeUnknown):  # the redelivery waits for the provider's word instead of resending
        replies.handle(reply, "m-2", db=db, send=send)
    assert len(providers.sent) == 1

    sent_body = providers.requests[-1].body
    assert sent_body["biz_opaque_callback_data"] == row["callback_ref"]
    wamid = "wamid.crash-window-1"
    callback(db, meta_cloud.adapter("meta"), cloud_status(wamid, "sent", 1_763_640_000, row["callback_ref"]))
    replies.handle(reply, "m-3", db=db, send=send)
    assert len(providers.sent) == 1
    row = outbound(db, reply)
    assert (row["status"], row["provider_message_id"], row["reconciled"]) == ("sent", wamid, "status callback")
    stored = query(db, "SELECT * FROM messages WHERE event_id = %s", reply.event_id)
    assert len(stored) == 1 and stored[0]["provider_message_id"] == wamid and stored[0]["sent_by"] == "assistant"
    assert query(db, "SELECT status FROM events WHERE event_id = %s AND status <> 'duplicate'",
                 reply.event_id) == [{"status": "processed"}]
    replies.handle(reply, "m-4", db=db, send=send)  # a late redelivery is a duplicate, never a send
    assert len(providers.sent) == 1


@pytest.mark.parametrize("provider", ["evolution", "zapi", "gupshup"])
def test_a_crash_window_is_reconciled_from_a_status_for_a_message_to_this_lead(
        db: Database, providers: ProviderStandIn, provider: str) -> None:
    reply = reply_for(db, provider, text="Instalamos sim em Guarulhos.")
    payload = reply.typed_payload()
    assert isinstance(payload, ReplyRequested)
    crash_next(db)
    with pytest.raises(Exception, match="injected"):
        replies.handle(reply, "m-1", db=db, send=send)
    other_lead = f"55119{uuid.uuid4().int % 10**8:08d}"
    callback(db, *status_webhook(provider, f"{provider}-ID-OF-ANOTHER-LEAD", "delivered", 1_763_640_000, to=other_lead))
    with pytest.raises(replies.OutcomeUnknown):  # a status for someone else is no evidence
        replies.handle(reply, "m-2", db=db, send=send)
    lost = f"{provider}-ID-LOST-IN-THE-CRASH"
    callback(db, *status_webhook(provider, lost, "delivered", 1_763_640_000, to=payload.phone))
    replies.handle(reply, "m-3", db=db, send=send)
    assert len(providers.sent) == 1
    row = outbound(db, reply)
    assert (row["status"], row["provider_message_id"], row["reconciled"]) == (
        "delivered", lost, "status to this lead")  # the waiting status applied on record
    assert query(db, "SELECT sent_by FROM messages WHERE provider_message_id = %s", lost) == [{"sent_by": "assistant"}]


def test_without_any_word_from_the_provider_the_reply_waits_the_window_then_goes_again(
        db: Database, providers: ProviderStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    reply = reply_for(db, "gupshup")
    crash_next(db)
    with pytest.raises(Exception, match="injected"):
        replies.handle(reply, "m-1", db=db, send=send)
    with pytest.raises(replies.OutcomeUnknown):
        replies.handle(reply, "m-2", db=db, send=send)
    assert len(providers.sent) == 1
    monkeypatch.setenv("REPLY_RECONCILE_SECONDS", "0")
    replies.handle(reply, "m-3", db=db, send=send)
    assert len(providers.sent) == 2  # the documented trade-off: silence past the window is taken as not sent
    assert outbound(db, reply)["reconciled"] == "no word from the provider; taken as not sent"


def test_a_refused_send_is_retried_and_goes_out_once(db: Database, providers: ProviderStandIn) -> None:
    reply = reply_for(db, "zapi")
    providers.failing = True
    with pytest.raises(replies.SendError, match="500"):
        replies.handle(reply, "m-1", db=db, send=send)
    row = outbound(db, reply)
    assert row["status"] == "pending" and "500" in row["last_error"] and row["attempts"] == 1
    providers.failing = False
    replies.handle(reply, "m-2", db=db, send=send)
    replies.handle(reply, "m-3", db=db, send=send)
    assert len(providers.sent) == 1 and outbound(db, reply)["status"] == "sent"


# -- every provider, and its statuses ------------------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_sends_through_its_stand_in_and_its_statuses_move_the_message_in_order(
        db: Database, providers: ProviderStandIn, provider: str) -> None:
    reply = reply_for(db, provider, text=f"Oi via {provider}")
    replies.handle(reply, "m-1", db=db, send=send)
    (sent,) = providers.sent
    assert (sent.provider, sent.text) == (provider, f"Oi via {provider}")
    row = outbound(db, reply)
    assert row["status"] == "sent" and row["provider_message_id"]
    message_id = row["provider_message_id"]

    for word, ts in (("read", 1_763_640_300), ("delivered", 1_763_640_200), ("sent", 1_763_640_100)):
        callback(db, *status_webhook(provider, message_id, word, ts))  # out of order: read first
    row = outbound(db, reply)
    assert row["status"] == "read"
    assert row["delivered_at"] is not None and row["read_at"] is not None
    applied = query(db, "SELECT status, applied FROM message_statuses WHERE provider_message_id = %s ORDER BY id",
                    message_id)
    assert applied == [{"status": "read", "applied": True}, {"status": "delivered", "applied": False},
                       {"status": "sent", "applied": False}]
    callback(db, *status_webhook(provider, message_id, "read", 1_763_640_300))  # a repeated callback: written once
    assert len(query(db, "SELECT id FROM message_statuses WHERE provider_message_id = %s", message_id)) == 3
    steps = [(step["what"], step["detail"]) for step in trace(db, reply.correlation_id).timeline()]
    assert ("reply read", f"{provider} {message_id} attempts 1") in steps
    assert [what for what, _ in steps if what.startswith("delivery")] == ["delivery read", "delivery delivered",
                                                                           "delivery sent"]


@pytest.mark.parametrize("provider", ["meta", "360dialog", "gupshup", "evolution"])
def test_a_failed_delivery_keeps_the_providers_reason(db: Database, providers: ProviderStandIn,
                                                      provider: str) -> None:
    reply = reply_for(db, provider)
    replies.handle(reply, "m-1", db=db, send=send)
    message_id = outbound(db, reply)["provider_message_id"]
    callback(db, *status_webhook(provider, message_id, "failed", 1_763_640_100))
    callback(db, *status_webhook(provider, message_id, "delivered", 1_763_640_050))  # late: does not undo the failure
    row = outbound(db, reply)
    assert row["status"] == "failed" and row["failed_at"] is not None
    if provider != "evolution":  # Evolution's ack carries no reason
        assert row["failure_reason"] and ("131026" in row["failure_reason"] or "WhatsApp" in row["failure_reason"])
