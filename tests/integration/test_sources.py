"""Every source through the local stack, as raw HTTP, down to Postgres rows (tenants acme and globex)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1

from shared.db import Database
from tests.conftest import RunningStack, query, wait_for
from tests.fixtures import load, raw
from tests.fixtures.graph_stand_in import shared_stand_in
from tests.fixtures.tenants import hub_signature, install, secret, typeform_signature
from tests.http import post, send

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenants(stack: RunningStack, database: Database) -> RunningStack:
    install(database, Path(stack.env["CT_LOCAL_DIR"]) / "tenants.json")
    return stack


def settled_events(db: Database, n: int) -> list[dict[str, object]]:
    def done() -> list[dict[str, object]] | None:
        rows = query(db, "SELECT event_type, status, tenant_id, correlation_id FROM events ORDER BY id")
        return rows if len(rows) >= n and all(r["status"] not in ("processing", "failed") for r in rows) else None

    return list(wait_for(done, timeout=60))


def test_a_signed_meta_batch_of_two_writes_two_messages(tenants: RunningStack, clean_db: Database) -> None:
    body = raw("meta", "batch_two")
    response = post(tenants.url("whatsapp") + "/webhook/whatsapp/acme/meta", raw=body,
                    headers={"X-Hub-Signature-256": hub_signature("acme", body)})
    assert response.status == 202, response.text
    assert len(response.json()["event_ids"]) == 2
    events = settled_events(clean_db, 2)
    assert {(e["event_type"], e["status"], e["tenant_id"]) for e in events} == {
        ("message_received", "processed", "acme")}
    messages = query(clean_db, "SELECT m.provider, m.provider_message_id, m.sender_phone, m.body, l.name, "
                               "m.tenant_id FROM messages m JOIN leads l ON l.id = m.lead_id "
                               "ORDER BY m.provider_message_id")
    assert messages == [
        {"provider": "meta", "provider_message_id": "wamid.BATCH0001", "sender_phone": "5511977776666",
         "body": "Primeira mensagem", "name": "Maria Souza", "tenant_id": "acme"},
        {"provider": "meta", "provider_message_id": "wamid.BATCH0002", "sender_phone": "552133334444",
         "body": "Sou o Pedro, do Rio", "name": "Pedro Lima", "tenant_id": "acme"},
    ]


def test_a_typeform_lead_with_a_bad_signature_gets_401_and_writes_nothing(tenants: RunningStack,
                                                                         clean_db: Database) -> None:
    body = raw("typeform", "form_response")
    forged = typeform_signature("globex", body)
    response = post(tenants.url("leads") + "/acme/typeform", raw=body, headers={"Typeform-Signature": forged})
    assert response.status == 401, response.text
    assert "form_response" not in response.text
    good = post(tenants.url("leads") + "/acme/typeform", raw=body,
                headers={"Typeform-Signature": typeform_signature("acme", body)})
    assert good.status == 202  # the control: the same bytes, rightly signed, go through
    settled_events(clean_db, 1)
    assert query(clean_db, "SELECT correlation_id FROM events") == [{"correlation_id": good.json()["correlation_id"]}]
    lead = query(clean_db, "SELECT name, phone, email, source, extra FROM leads")[0]
    assert (lead["name"], lead["phone"], lead["email"], lead["source"]) == (
        "Ana Ribeiro", "5519988776655", "ana.ribeiro@example.com", "typeform")
    assert lead["extra"]["answers"]["materiais"] == ["Vinílico", "Laminado"]
    assert lead["extra"]["form_id"] == "lT4Z3j"
    refused = wait_for(lambda: [line for line in tenants.log().splitlines()
                                if response.json()["correlation_id"] in line and '"http_status": 401' in line])
    assert "webhook refused" in refused[0]
    assert not any("Ana Ribeiro" in line or "ana.ribeiro@" in line for line in tenants.log().splitlines())


def test_a_meta_leadgen_webhook_ends_as_a_complete_lead(tenants: RunningStack, clean_db: Database) -> None:
    graph = shared_stand_in()
    graph.tokens.add(secret("acme", "meta-page-token"))
    graph.leads["1234567890123456"] = load("meta_leadgen", "graph_lead")
    body = raw("meta_leadgen", "webhook")
    response = post(tenants.url("leads") + "/acme/meta", raw=body,
                    headers={"X-Hub-Signature-256": hub_signature("acme", body), "X-Correlation-ID": "leadgen-1"})
    assert response.status == 202, response.text
    lead = wait_for(lambda: query(clean_db, "SELECT * FROM leads WHERE tenant_id = 'acme'"), timeout=60)[0]
    assert (lead["name"], lead["phone"], lead["email"], lead["source"]) == (
        "Beatriz Costa", "5511966665555", "beatriz.costa@example.com", "meta_leadgen")
    assert lead["correlation_id"] == "leadgen-1"
    assert lead["extra"]["form_id"] == "987654321098765"
    assert lead["extra"]["campaign_id"] == "120210000000000003"
    assert lead["extra"]["answers"]["materiais_de_interesse"] == ["porcelanato", "vinilico"]
    assert lead["extra"]["source_lead_id"] == "1234567890123456"
    [event] = settled_events(clean_db, 1)
    assert (event["event_type"], event["status"]) == ("leadgen_received", "processed")
    path, token = next(r for r in graph.requests if "1234567890123456" in r[0])
    assert token == secret("acme", "meta-page-token") and token not in path
    assert "field_data" in path  # asked for the answers


def test_leadgens_the_graph_api_refuses_are_retried_recorded_failed_and_dead_lettered(
        tenants: RunningStack, clean_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    shared_stand_in().tokens.add(secret("acme", "meta-page-token"))  # a good token, so the 404 is about the lead
    # Two leads the stand-in does not know, in one webhook: two 404s from the Graph API, failing together
    # (the emulator's own push stopped redelivering such pairs; the stack's pusher retries each to the end).
    webhook = load("meta_leadgen", "webhook_two")
    unknown = ["9999000011112222", "9999000011113333"]
    for entry, leadgen_id in zip(webhook["entry"], unknown, strict=True):
        entry["changes"][0]["value"]["leadgen_id"] = leadgen_id
    body = json.dumps(webhook).encode()
    response = post(tenants.url("leads") + "/acme/meta", raw=body,
                    headers={"X-Hub-Signature-256": hub_signature("acme", body)})
    assert response.status == 202

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", tenants.description["pubsub_emulator_host"])
    subscriber = pubsub_v1.SubscriberClient()
    dlq = subscriber.subscription_path(tenants.project, "leadgen-received-dlq-ops")
    received: list[Any] = []
    try:
        deadline = time.monotonic() + 120
        while len(received) < 2 and time.monotonic() < deadline:
            # return_immediately: the emulator's long-poll can outlive the call's deadline
            pulled = subscriber.pull(request={"subscription": dlq, "max_messages": 10, "return_immediately": True},
                                     timeout=10).received_messages
            received += pulled
            if not pulled:
                time.sleep(0.5)
        if received:
            subscriber.acknowledge(subscription=dlq, ack_ids=[m.ack_id for m in received])
    finally:
        subscriber.close()
    rows = query(clean_db, "SELECT status, attempts, last_error FROM events WHERE event_type = 'leadgen_received'")
    seen = {"dead_lettered": len(received), "events": rows,
            "stack": [line for line in tenants.log().splitlines() if line.startswith("[stack]")][-5:]}
    assert sorted(m.message.attributes["event_type"] for m in received) == ["leadgen_received"] * 2, seen
    assert len(rows) == 2 and all(r["status"] == "failed" and r["attempts"] == 5 for r in rows), seen
    assert all("GraphError" in str(r["last_error"]) and "404" in str(r["last_error"]) for r in rows)
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 0}]


def test_the_same_person_by_form_and_by_whatsapp_is_one_lead(tenants: RunningStack, clean_db: Database) -> None:
    form = post(tenants.url("leads") + "/acme/form", {"name": "Maria Souza", "phone": "(11) 97777-6666",
                                                       "email": "maria@example.com", "source": "site"},
                headers={"X-Webhook-Token": secret("acme", "form-token")})
    assert form.status == 202, form.text
    wait_for(lambda: query(clean_db, "SELECT id FROM leads"))
    # Her WhatsApp id predates the 9th digit and arrives through Evolution's @lid addressing.
    message = post(tenants.url("whatsapp") + "/acme/evolution", load("evolution", "lid_with_alt"),
                   headers={"X-Webhook-Token": secret("acme", "evolution-token")})
    assert message.status == 202, message.text
    msg = wait_for(lambda: query(clean_db, "SELECT lead_id FROM messages"))[0]
    leads = query(clean_db, "SELECT id, phone, email, name FROM leads")
    assert leads == [{"id": msg["lead_id"], "phone": "5511977776666", "email": "maria@example.com",
                      "name": "Maria Souza"}]


def test_tenant_isolation(tenants: RunningStack, clean_db: Database) -> None:
    """Tenant A's credentials against tenant B's URL: 401 or 404, and nothing is written."""
    meta = raw("meta", "text")
    typeform = raw("typeform", "form_response")
    attempts = [
        ("whatsapp", "/globex/zapi", raw("zapi", "text"), {"X-Webhook-Token": secret("acme", "zapi-token")}),
        ("whatsapp", "/globex/evolution", raw("evolution", "text"),
         {"X-Webhook-Token": secret("acme", "evolution-token")}),
        ("whatsapp", "/globex/meta", meta, {"X-Hub-Signature-256": hub_signature("acme", meta)}),
        ("leads", "/globex/typeform", typeform, {"Typeform-Signature": typeform_signature("acme", typeform)}),
        ("leads", "/globex/form", json.dumps({"phone": "11999990000"}).encode(),
         {"X-Webhook-Token": secret("acme", "form-token")}),
        ("leads", "/globex/google_ads", json.dumps({**load("google_ads", "lead"),
                                                    "google_key": secret("acme", "google-key")}).encode(), {}),
        ("whatsapp", "/initech/zapi", raw("zapi", "text"), {"X-Webhook-Token": secret("acme", "zapi-token")}),
        # globex's own door and token, but acme's Z-API instance in the body
        ("whatsapp", "/globex/zapi", raw("zapi", "text"), {"X-Webhook-Token": secret("globex", "zapi-token")}),
    ]
    for function, path, body, headers in attempts:
        response = post(tenants.url(function) + path, raw=body, headers=headers)
        assert response.status in (401, 404), (path, response.status, response.text)
    get = send("GET", tenants.url("whatsapp") + "/globex/meta?hub.mode=subscribe&hub.challenge=42"
               f"&hub.verify_token={secret('acme', 'meta-verify-token')}")
    assert get.status == 403
    time.sleep(3)  # anything published would have been written by now
    assert query(clean_db, "SELECT count(*) AS n FROM events") == [{"n": 0}]
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 0}]
    # The same phone in both tenants is two leads, each in its own tenant.
    for tenant in ("acme", "globex"):
        ok = post(tenants.url("leads") + f"/{tenant}/form", {"phone": "11999990000", "name": tenant},
                  headers={"X-Webhook-Token": secret(tenant, "form-token")})
        assert ok.status == 202
    rows = wait_for(lambda: (r := query(clean_db, "SELECT tenant_id, name FROM leads ORDER BY tenant_id"))
                    and len(r) == 2 and r)
    assert rows == [{"tenant_id": "acme", "name": "acme"}, {"tenant_id": "globex", "name": "globex"}]
