"""The assistant end to end, through a local stack whose OpenAI and WhatsApp provider are
local stand-ins (the real `openai` client and the real senders talk to them over HTTP).

One stack for the module (its own database), started with the stand-ins' URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ops.localdb import ensure_database
from shared.assistant.config import load_tenant
from shared.db import Database
from shared.migrations import migrate
from tests.conftest import ROOT, RunningStack, query, start_stack, stop_stack, wait_for
from tests.http import post
from tests.integration.test_catalog import catalog_csv
from tests.integration.test_outbox import CRASH_SQL
from tests.seeds import EVENTS_AUTH
from tests.standins import OpenAIStandIn, ProviderStandIn

pytestmark = pytest.mark.integration

EVOLUTION_KEY = "evo-" + uuid.uuid4().hex
META_APP_SECRET = "app-" + uuid.uuid4().hex
KEYS = {"evolution": EVOLUTION_KEY, "zapi": "zapi-" + uuid.uuid4().hex, "meta": "meta-" + uuid.uuid4().hex,
        "360dialog": "d360-" + uuid.uuid4().hex, "gupshup": "gs-" + uuid.uuid4().hex}
DEFAULT = load_tenant("default")
SETTLE = 1.0


def model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What the stand-in model answers: facts read from the lead's words, a reply naming the last message."""
    lead = [m["content"] for m in messages if m["role"] == "user" and not m["content"].startswith("[dados")]
    said = " ".join(lead)
    facts: dict[str, Any] = {name: None for name in DEFAULT.settings.lead_facts}
    if m := re.search(r"(\d+)\s*m²", said):
        facts["area_m2"] = float(m[1])
    if m := re.search(r"\bem ([A-ZÁÉÍÓÚ][\wÀ-ú]+)", said):
        facts["city"] = m[1]
    if m := re.search(r"\bsou (?:a|o) ([A-ZÁÉÍÓÚ]\w+)", said):
        facts["name"] = m[1]
    if "vinílico" in said:
        facts["floor_type"] = "vinílico"
    if "casa" in said or "apartamento" in said:
        facts["project_type"] = "residencial"
    complaint = "reclamação" in lead[-1]
    reply = f"Resposta a: {lead[-1]}"
    products = [line for line in messages[0]["content"].splitlines() if line.startswith("- [")]
    if "quanto custa" in lead[-1] and products:  # quote the first product shown, as the catalog gives it
        name, price = re.findall(r"\] (.+?): (R\$ [\d.,]+)", products[0])[0]
        reply = f"O {name} sai por {price} o m²."
    return {"reply": reply, "lead_facts": facts,
            "intent": "reclamacao" if complaint else "orcamento", "handoff": complaint}


@dataclass
class AssistantStack:
    stack: RunningStack
    db: Database
    database_url: str
    openai: OpenAIStandIn
    providers: ProviderStandIn


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[AssistantStack]:
    openai = OpenAIStandIn(model)
    providers = ProviderStandIn(KEYS)
    url = ensure_database(pg_server_url, f"ct_assistant_{uuid.uuid4().hex[:8]}")
    db = Database.for_url(url, size=4)
    migrate(db)
    extra = {"OPENAI_BASE_URL": f"{openai.url}/v1", "OPENAI_API_KEY": "sk-stand-in",
             "EVOLUTION_API_URL": providers.url, "CT_DEFAULT_EVOLUTION_API_KEY": EVOLUTION_KEY,
             "ZAPI_API_URL": providers.url, "CT_DEFAULT_ZAPI_INSTANCE_TOKEN": KEYS["zapi"],
             "CT_DEFAULT_ZAPI_CLIENT_TOKEN": "client-" + uuid.uuid4().hex,
             "META_GRAPH_BASE_URL": providers.url, "CT_DEFAULT_META_ACCESS_TOKEN": KEYS["meta"],
             "DIALOG360_API_URL": providers.url, "CT_DEFAULT_360DIALOG_API_KEY": KEYS["360dialog"],
             "GUPSHUP_API_URL": providers.url, "CT_DEFAULT_GUPSHUP_API_KEY": KEYS["gupshup"],
             "CT_DEFAULT_META_APP_SECRET": META_APP_SECRET, "ASSISTANT_SETTLE_SECONDS": str(SETTLE)}
    stack = start_stack(tmp_path_factory.mktemp("assistant-stack"), url, extra)
    try:
        yield AssistantStack(stack, db, url, openai, providers)
    finally:
        stop_stack(stack)
        db.close()
        openai.close()
        providers.close()


@pytest.fixture
def assistant(env: AssistantStack) -> AssistantStack:
    env.openai.down = False
    env.providers.failing = False
    return env


def new_phone() -> str:
    return f"55119{random.randint(10_000_000, 99_999_999)}"


def inbound(env: AssistantStack, phone: str, text: str) -> dict[str, Any]:
    body = {"event": "messages.upsert",
            "data": {"key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False,
                             "id": uuid.uuid4().hex[:20].upper()},
                     "pushName": "Lead do WhatsApp", "message": {"conversation": text},
                     "messageType": "conversation"}}
    response = post(env.stack.url("whatsapp") + "/webhook/whatsapp", body)
    assert response.status == 202, response.text
    return dict(response.json())


def turn(env: AssistantStack, event_id: str) -> dict[str, Any] | None:
    rows = query(env.db, "SELECT * FROM assistant_turns WHERE inbound_event_id = %s", event_id)
    return rows[0] if rows else None


def finished_turn(env: AssistantStack, event_id: str, timeout: float = 30) -> dict[str, Any]:
    return dict(wait_for(lambda: (t := turn(env, event_id)) and t["status"] != "pending" and t, timeout=timeout))


def sends(env: AssistantStack, phone: str, n: int, timeout: float = 30) -> list[Any]:
    return list(wait_for(lambda: len(s := env.providers.sent_to(phone)) >= n and s, timeout=timeout))


def calls_with(env: AssistantStack, text: str) -> list[Any]:
    return [c for c in env.openai.calls() if any(m["content"] == text for m in c.body["messages"])]


def conversation(env: AssistantStack, phone: str) -> dict[str, Any]:
    return query(env.db, "SELECT c.* FROM conversations c JOIN leads l ON l.id = c.lead_id "
                 "WHERE l.phone = %s", phone)[0]


def test_an_inbound_message_gets_exactly_one_reply_sent_and_stored_and_its_facts_land_on_the_lead(
        assistant: AssistantStack) -> None:
    phone = new_phone()
    lead = post(assistant.stack.url("leads") + "/webhook/lead",
                {"source": "manual", "name": "Maria Souza", "phone": phone, "location": "São Paulo"})
    assert lead.status == 202
    wait_for(lambda: query(assistant.db, "SELECT id FROM leads WHERE phone = %s", phone))
    text = "Oi, sou a Joana, quero piso vinílico para 40 m² em Campinas, é para minha casa"
    accepted = inbound(assistant, phone, text)

    sent = sends(assistant, phone, 1)
    assert sent[0].text == f"Resposta a: {text}" and sent[0].account == "pisos-exemplo"
    assert sent[0].headers["apikey"] == EVOLUTION_KEY
    stored = wait_for(lambda: query(assistant.db, "SELECT * FROM messages WHERE sender_phone = %s "
                                    "AND direction = 'outbound'", phone))
    assert len(stored) == 1 and stored[0]["sent_by"] == "assistant" and stored[0]["body"] == sent[0].text
    assert stored[0]["correlation_id"] == accepted["correlation_id"]
    time.sleep(SETTLE + 3)
    assert len(assistant.providers.sent_to(phone)) == 1
    assert finished_turn(assistant, accepted["event_id"])["status"] == "answered"

    row = query(assistant.db, "SELECT * FROM leads WHERE phone = %s", phone)[0]
    assert row["name"] == "Maria Souza" and row["location"] == "São Paulo"  # what a person entered stays
    assert row["project_type"] == "residencial"
    assert row["extra"]["area_m2"] == 40 and row["extra"]["floor_type"] == "vinílico"
    move = wait_for(lambda: query(assistant.db, "SELECT * FROM pipeline_moves WHERE lead_id = %s", row["id"]))
    assert move[0]["to_stage"] == "qualificado" and move[0]["applied"] is True
    assert move[0]["correlation_id"] == accepted["correlation_id"]

    (call,) = calls_with(assistant, text)
    system, *rest = call.body["messages"]
    assert system["role"] == "system" and DEFAULT.facts in system["content"] and text not in system["content"]
    assert call.body["model"] == DEFAULT.settings.model
    lead_side = [m["content"] for m in rest if m["role"] == "user"]
    assert lead_side[-1] == text and all(c == text or c.startswith("[dados") for c in lead_side)


def test_several_messages_in_a_row_get_one_considered_answer(assistant: AssistantStack) -> None:
    phone = new_phone()
    texts = ["Oi", "quero trocar o piso da sala", "são uns 25 m² em Osasco"]
    accepted = [inbound(assistant, phone, t) for t in texts]
    sent = sends(assistant, phone, 1)
    assert sent[0].text == f"Resposta a: {texts[-1]}"
    statuses = sorted(finished_turn(assistant, a["event_id"])["status"] for a in accepted)
    assert statuses == ["answered", "superseded", "superseded"]
    time.sleep(2)
    assert len(assistant.providers.sent_to(phone)) == 1
    (call,) = calls_with(assistant, texts[-1])
    assert [m["content"] for m in call.body["messages"] if m["content"] in texts] == texts


def test_asking_for_a_person_hands_off_silences_the_assistant_until_an_operator_hands_back(
        assistant: AssistantStack) -> None:
    phone = new_phone()
    asked = inbound(assistant, phone, "quero falar com um atendente")
    assert sends(assistant, phone, 1)[0].text == DEFAULT.handoff
    assert conversation(assistant, phone)["handled_by"] == "human"
    (handoff,) = query(assistant.db, "SELECT * FROM handoffs WHERE event_id = %s", asked["event_id"])
    assert handoff["reason"] == "lead_asked" and handoff["handled_by"] == "human"
    assert handoff["correlation_id"] == asked["correlation_id"]
    assert calls_with(assistant, "quero falar com um atendente") == []
    traced = ctower(assistant, "trace", asked["correlation_id"], "--json")
    assert traced.returncode == 0, traced.stderr
    steps = [row["what"] for row in json.loads(traced.stdout)["rows"]]
    assert "handoff to human" in steps and "assistant handoff" in steps

    ignored = inbound(assistant, phone, "alô, tem alguém aí?")
    assert finished_turn(assistant, ignored["event_id"])["status"] == "skipped"
    time.sleep(1)
    assert len(assistant.providers.sent_to(phone)) == 1

    cli = subprocess.run([sys.executable, "-m", "ops.cli", "assistant", "handback", "--tenant", "default",
                          "--phone", phone, "--database-url", assistant.database_url, "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert len(json.loads(cli.stdout)["handed_back"]) == 1
    assert conversation(assistant, phone)["handled_by"] == "assistant"
    back = query(assistant.db, "SELECT * FROM handoffs WHERE conversation_id = %s AND reason = 'operator'",
                 conversation(assistant, phone)["id"])
    assert back[0]["handled_by"] == "assistant" and back[0]["actor"]

    inbound(assistant, phone, "voltei, quero um orçamento")
    assert sends(assistant, phone, 2)[1].text == "Resposta a: voltei, quero um orçamento"


def test_a_seller_writing_in_the_conversation_hands_it_to_people(assistant: AssistantStack) -> None:
    phone = new_phone()
    inbound(assistant, phone, "bom dia, vocês fazem porcelanato?")
    sends(assistant, phone, 1)
    seller = post(assistant.stack.url("events"), {
        "event_type": "message_received", "source": "evolution",
        "payload": {"provider": "evolution", "provider_message_id": uuid.uuid4().hex[:16].upper(), "phone": phone,
                    "chat_id": f"{phone}@s.whatsapp.net", "text": "Bom dia! Aqui é o Carlos, vendedor.",
                    "direction": "outbound"}}, headers=EVENTS_AUTH)
    assert seller.status == 202, seller.text
    handoff = wait_for(lambda: query(assistant.db, "SELECT * FROM handoffs WHERE event_id = %s",
                                     seller.json()["event_id"]))
    assert handoff[0]["reason"] == "seller_message" and handoff[0]["correlation_id"] == seller.json()["correlation_id"]
    later = inbound(assistant, phone, "e qual o prazo?")
    assert finished_turn(assistant, later["event_id"])["status"] == "skipped"
    assert len(assistant.providers.sent_to(phone)) == 1


def test_openai_down_longer_than_the_old_retry_budget_gives_one_fallback_then_one_answer_to_everything(
        assistant: AssistantStack) -> None:
    phone = new_phone()
    assistant.openai.down = True
    first = "vocês instalam em Guarulhos?"
    accepted = inbound(assistant, phone, first)
    assert sends(assistant, phone, 1)[0].text == DEFAULT.fallback
    # Past the 5 deliveries that dead-lettered the turn before: its subscription has its own budget now.
    wait_for(lambda: len(calls_with(assistant, first)) >= 7, timeout=90, interval=1)
    assert finished_turn_or_pending(assistant, accepted["event_id"])["status"] == "pending"
    second = "e fazem piso vinílico de 30 m²?"
    again = inbound(assistant, phone, second)  # the lead writes again while the model is still down
    wait_for(lambda: len(calls_with(assistant, second)) >= 2, timeout=60, interval=1)
    assert len(assistant.providers.sent_to(phone)) == 1  # no second "we'll answer in a moment"
    assert finished_turn(assistant, accepted["event_id"])["status"] == "superseded"
    usage = query(assistant.db, "SELECT calls FROM assistant_usage WHERE tenant_id = 'default'")
    assistant.openai.down = False

    sent = sends(assistant, phone, 2, timeout=60)
    assert sent[1].text == f"Resposta a: {second}"
    done = finished_turn(assistant, again["event_id"])
    assert done["status"] == "answered" and done["attempts"] >= 3
    answered = calls_with(assistant, second)[-1].body["messages"]
    contents = [m["content"] for m in answered]
    assert first in contents and DEFAULT.fallback in contents and second in contents  # one answer to everything
    assert answered[-1]["role"] == "system" and "desculpas pela demora" in answered[-1]["content"]
    # The failed calls were given back: the outage did not spend the day's budget.
    assert query(assistant.db, "SELECT calls FROM assistant_usage WHERE tenant_id = 'default'")[0]["calls"] <= (
        usage[0]["calls"] if usage else 0) + 1
    time.sleep(3)
    assert len(assistant.providers.sent_to(phone)) == 2
    letters = ctower(assistant, "dlq", "show", "--type", "message_received", "--correlation-id",
                     accepted["correlation_id"], "--json")
    assert json.loads(letters.stdout) == [], letters.stdout + letters.stderr  # nothing dead-lettered
    lines = [line for line in assistant.stack.log().splitlines()
             if line.startswith("[assistant]") and accepted["event_id"] in line and "turn not finished" in line]
    statuses = [json.loads(line.split("] ", 1)[1])["event_status"] for line in lines]
    assert statuses[0] == "failed" and set(statuses[1:]) == {"failed_again"}  # the failed metric counts it once


def finished_turn_or_pending(env: AssistantStack, event_id: str) -> dict[str, Any]:
    return dict(wait_for(lambda: turn(env, event_id), timeout=10))


def test_a_tenant_over_its_message_limit_keeps_every_event_but_gets_no_answer_and_the_alert_counts_it(
        assistant: AssistantStack) -> None:
    phone = new_phone()
    with assistant.db.transaction() as cur:
        cur.execute("INSERT INTO tenant_limits (tenant_id, messages_per_minute) VALUES ('default', 1)")
    try:
        accepted = [inbound(assistant, phone, t) for t in ("oi", "quero um orçamento de piso")]
        assert finished_turn(assistant, accepted[-1]["event_id"])["status"] == "over_limit"
        assert finished_turn(assistant, accepted[0]["event_id"])["status"] == "superseded"
        stored = query(assistant.db, "SELECT event_id FROM messages WHERE sender_phone = %s", phone)
        assert sorted(r["event_id"] for r in stored) == sorted(a["event_id"] for a in accepted)  # nothing lost
        processed = query(assistant.db, "SELECT event_id FROM events WHERE status = 'processed' "
                          "AND event_id = ANY(%s::text[])", [a["event_id"] for a in accepted])
        assert len(processed) == 2
        alert_lines = [json.loads(line.split("] ", 1)[1]) for line in assistant.stack.log().splitlines()
                       if '"event_status": "over_limit"' in line and accepted[-1]["event_id"] in line]
        assert [(e["event_status"], e["function"], e["severity"]) for e in alert_lines] == [
            ("over_limit", "assistant", "WARNING")]
        time.sleep(2)
        assert assistant.providers.sent_to(phone) == []
    finally:
        with assistant.db.transaction() as cur:
            cur.execute("DELETE FROM tenant_limits WHERE tenant_id = 'default'")


def test_the_assistant_is_shown_the_catalog_products_that_match_and_may_quote_their_prices(
        assistant: AssistantStack, tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text(catalog_csv(1000), encoding="utf-8")
    imported = ctower(assistant, "catalog", "import", "--tenant", "default", str(path), "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout)["imported"] == 1000, imported.stderr
    try:
        phone = new_phone()
        text = "piso vinílico para sala de 40m²"
        accepted = inbound(assistant, phone, text)
        sends(assistant, phone, 1)
        (call,) = calls_with(assistant, text)
        system = call.body["messages"][0]["content"]
        shown = [line for line in system.splitlines() if line.startswith("- [SKU-")]
        assert len(shown) == DEFAULT.settings.catalog_products
        assert all("Piso Vinílico Click" in line and "R$" in line for line in shown)
        assert "Porcelanato" not in system and "Rodapé" not in system
        assert "produtos: SKU-" in finished_turn(assistant, accepted["event_id"])["detail"]

        inbound(assistant, phone, "quanto custa o metro?")
        quoted = sends(assistant, phone, 2)[1].text
        price = re.findall(r"R\$ [\d.,]+", shown[0])[0]
        assert quoted.endswith(f"sai por {price} o m².")  # a catalog price passes the money guardrail
    finally:
        with assistant.db.transaction() as cur:
            cur.execute("DELETE FROM products WHERE tenant_id = 'default'")


def provider_inbound(provider: str, phone: str, message_id: str, text: str) -> dict[str, Any]:
    """A lead's text message as each provider's webhook carries it."""
    now = int(time.time())
    if provider == "evolution":
        return {"event": "messages.upsert", "data": {"key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False,
                                                             "id": message_id},
                                                     "message": {"conversation": text}, "messageType": "conversation"}}
    if provider == "zapi":
        return {"type": "ReceivedCallback", "instanceId": "3C7A1B2D9E4F5A6B7C8D9E0F1A2B3C4D", "messageId": message_id,
                "phone": phone, "fromMe": False, "momment": now * 1000, "senderName": "Lead", "text": {"message": text}}
    if provider == "gupshup":
        return {"app": "PisosExemplo", "timestamp": now * 1000, "version": 2, "type": "message",
                "payload": {"id": message_id, "source": phone, "type": "text", "payload": {"text": text},
                            "sender": {"phone": phone, "name": "Lead"}}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Lead"}, "wa_id": phone}],
        "messages": [{"from": phone, "id": message_id, "timestamp": str(now), "type": "text",
                      "text": {"body": text}}]}}]}]}


def provider_status(provider: str, phone: str, message_id: str, word: str) -> dict[str, Any]:
    """The provider's delivery-status webhook for a message the business sent."""
    now = int(time.time())
    if provider == "evolution":
        return {"event": "messages.update", "data": {"keyId": message_id, "remoteJid": f"{phone}@s.whatsapp.net",
                                                     "fromMe": True, "status": {"delivered": "DELIVERY_ACK",
                                                                                "read": "READ"}[word]}}
    if provider == "zapi":
        return {"type": "MessageStatusCallback", "instanceId": "3C7A1B2D9E4F5A6B7C8D9E0F1A2B3C4D", "ids": [message_id],
                "status": {"delivered": "RECEIVED", "read": "READ"}[word], "momment": now * 1000, "phone": phone}
    if provider == "gupshup":
        return {"app": "PisosExemplo", "timestamp": now * 1000, "version": 2, "type": "message-event",
                "payload": {"id": message_id, "gsId": message_id, "type": word, "destination": phone,
                            "payload": {"ts": now}}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
        "statuses": [{"id": message_id, "status": word, "timestamp": str(now), "recipient_id": phone}]}}]}]}


def webhook(env: AssistantStack, provider: str, body: dict[str, Any]) -> Any:
    """POST a provider's webhook to the tenant's URL; Meta's signed with the app secret, as Meta does."""
    raw = json.dumps(body).encode()
    headers = {}
    if provider == "meta":
        digest = hmac.new(META_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    response = post(env.stack.url("whatsapp") + f"/webhook/whatsapp/default/{provider}", raw=raw, headers=headers)
    assert response.status == 202, response.text
    return response


@pytest.fixture(scope="module")
def every_provider(env: AssistantStack) -> AssistantStack:
    """The default tenant takes WhatsApp from all five providers (open, as the local default is)."""
    from ops.tenants import publish, read_config, set_source
    from shared.tenants import SourceSettings

    for source in ("zapi", "360dialog", "gupshup"):
        set_source(env.db, "default", "whatsapp", source, SourceSettings())
    set_source(env.db, "default", "whatsapp", "meta", SourceSettings(secret="ct-default-meta-app-secret"))
    with env.db.transaction() as cur:
        publish(read_config(cur), str(Path(env.stack.env["CT_LOCAL_DIR"]) / "tenants.json"))
    return env


@pytest.mark.parametrize("provider", ["evolution", "zapi", "meta", "360dialog", "gupshup"])
def test_each_provider_answers_through_its_own_sender_and_its_statuses_move_the_reply(
        every_provider: AssistantStack, assistant: AssistantStack, provider: str) -> None:
    phone = new_phone()
    text = f"oi, escrevo pelo {provider}"
    webhook(assistant, provider, provider_inbound(provider, phone, f"IN{uuid.uuid4().hex[:16].upper()}", text))
    (sent,) = sends(assistant, phone, 1)
    assert (sent.provider, sent.text) == (provider, f"Resposta a: {text}")
    reply = wait_for(lambda: query(assistant.db, "SELECT * FROM outbound_messages WHERE phone = %s "
                                   "AND status = 'sent'", phone))[0]
    for word in ("read", "delivered"):  # out of order: the late `delivered` must not undo `read`
        assert webhook(assistant, provider,
                       provider_status(provider, phone, reply["provider_message_id"], word)).json()["event_id"]
    wait_for(lambda: len(query(assistant.db, "SELECT id FROM message_statuses WHERE provider_message_id = %s",
                               reply["provider_message_id"])) == 2)
    row = query(assistant.db, "SELECT * FROM outbound_messages WHERE reply_event_id = %s", reply["reply_event_id"])[0]
    assert row["status"] == "read" and row["delivered_at"] and row["read_at"]
    traced = ctower(assistant, "trace", reply["correlation_id"], "--json")
    steps = [step["what"] for step in json.loads(traced.stdout)["timeline"]]
    assert "reply read" in steps and "delivery read" in steps and "delivery delivered" in steps


def test_a_crash_between_the_send_and_its_commit_sends_once_on_the_stack(
        every_provider: AssistantStack, assistant: AssistantStack) -> None:
    with assistant.db.transaction() as cur:
        cur.execute(CRASH_SQL)  # the next commit that marks a reply sent fails, once
        cur.execute("SELECT setval('crash_budget', 1, true)")
    try:
        phone = new_phone()
        webhook(assistant, "meta", provider_inbound("meta", phone, f"wamid.IN{uuid.uuid4().hex}", "vocês parcelam?"))
        sends(assistant, phone, 1)
        reply = wait_for(lambda: query(assistant.db, "SELECT o.*, e.last_error FROM outbound_messages o JOIN events e "
                                       "ON e.event_id = o.reply_event_id WHERE o.phone = %s AND e.status = 'failed' "
                                       "AND e.last_error LIKE '%%injected%%'", phone))[0]
        assert reply["status"] == "sending"  # the provider took it; the commit that would say so failed
        ref = next(r.body for r in assistant.providers.requests
                   if isinstance(r.body, dict) and r.body.get("to") == phone)["biz_opaque_callback_data"]
        assert ref == reply["callback_ref"]
        status = provider_status("meta", phone, f"wamid.OUT{uuid.uuid4().hex}", "delivered")
        status["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = ref
        webhook(assistant, "meta", status)  # Meta's status names our reference: the send is known to have gone
        done = wait_for(lambda: query(assistant.db, "SELECT * FROM outbound_messages WHERE reply_event_id = %s "
                                      "AND status <> 'sending'", reply["reply_event_id"]), timeout=30)[0]
        assert (done["status"], done["reconciled"]) == ("delivered", "status callback")
        time.sleep(3)
        assert len(assistant.providers.sent_to(phone)) == 1
        assert len(query(assistant.db, "SELECT id FROM messages WHERE sender_phone = %s AND direction = 'outbound'",
                         phone)) == 1
    finally:
        with assistant.db.transaction() as cur:
            cur.execute("DROP TRIGGER IF EXISTS crash_after_send ON outbound_messages")


def ctower(env: AssistantStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The operators' CLI against this module's stack (its emulator, project and database)."""
    cli_env = {**os.environ, "PUBSUB_EMULATOR_HOST": env.stack.description["pubsub_emulator_host"],
               "GOOGLE_CLOUD_PROJECT": env.stack.project, "DATABASE_URL": env.database_url}
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=ROOT, env=cli_env, capture_output=True,
                          text=True, timeout=120)


def test_a_provider_failure_is_retried_dead_lettered_and_redriven(assistant: AssistantStack) -> None:
    phone = new_phone()
    assistant.providers.failing = True
    accepted = inbound(assistant, phone, "quero um orçamento")
    reply_event_id = finished_turn(assistant, accepted["event_id"])["reply_event_id"]
    wait_for(lambda: query(assistant.db, "SELECT * FROM events WHERE event_id = %s AND status = 'failed' "
                           "AND attempts = 5", reply_event_id), timeout=90, interval=1)
    selection = ["--type", "reply_requested", "--correlation-id", accepted["correlation_id"]]

    def dead_lettered() -> list[dict[str, Any]] | None:
        shown = ctower(assistant, "dlq", "show", *selection, "--json")
        return json.loads(shown.stdout) if shown.returncode == 0 else None

    (letter,) = wait_for(dead_lettered, timeout=60, interval=1)
    assert letter["event_id"] == reply_event_id
    assert letter["source_subscription"] == "reply-requested-reply-sender"
    failed = query(assistant.db, "SELECT * FROM events WHERE event_id = %s", reply_event_id)[0]
    assert "SendError" in failed["last_error"] and failed["correlation_id"] == accepted["correlation_id"]
    assert assistant.providers.sent_to(phone) == []

    assistant.providers.failing = False  # the provider is back
    redrive = ctower(assistant, "dlq", "redrive", *selection, "--json")
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    assert json.loads(redrive.stdout)["moved"] == 1
    sent = sends(assistant, phone, 1)
    assert sent[0].text == "Resposta a: quero um orçamento"
    wait_for(lambda: query(assistant.db, "SELECT status FROM events WHERE event_id = %s AND status = 'processed'",
                           reply_event_id))
    assert len(query(assistant.db, "SELECT * FROM messages WHERE sender_phone = %s AND direction = 'outbound'",
                     phone)) == 1
    time.sleep(2)
    assert len(assistant.providers.sent_to(phone)) == 1
