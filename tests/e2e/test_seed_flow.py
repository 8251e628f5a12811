"""The runbook's three requests through the local stack, as raw HTTP, down to Postgres rows."""

from __future__ import annotations

import pytest

from tests.conftest import RunningStack, query, wait_for
from tests.http import post
from tests.seeds import EVENTS_AUTH, LEAD, WHATSAPP, stage_change

pytestmark = pytest.mark.e2e


def test_lead_message_and_stage_change_land_with_their_correlation_ids(stack: RunningStack, clean_db) -> None:
    lead = post(stack.url("leads") + "/webhook/lead", LEAD, headers={"X-Correlation-ID": "seed-lead-1"})
    assert lead.status == 202, lead.text
    assert lead.json()["correlation_id"] == "seed-lead-1"
    assert lead.headers["x-correlation-id"] == "seed-lead-1"

    lead_row = wait_for(lambda: query(clean_db, "SELECT * FROM leads WHERE phone = %s", "5511999998888"))[0]
    assert lead_row["name"] == "João Teste"
    assert lead_row["email"] == "joao@teste.com"
    assert lead_row["correlation_id"] == "seed-lead-1"
    assert lead_row["extra"] == {}

    message = post(stack.url("whatsapp") + "/webhook/whatsapp", WHATSAPP)
    assert message.status == 202, message.text
    message_cid = message.json()["correlation_id"]
    msg_row = wait_for(lambda: query(clean_db, "SELECT * FROM messages WHERE provider_message_id = 'TEST123456'"))[0]
    assert msg_row["lead_id"] == lead_row["id"]
    assert msg_row["body"] == "Olá, gostaria de saber sobre pisos"
    assert (msg_row["message_type"], msg_row["raw_type"]) == ("text", "conversation")
    assert msg_row["correlation_id"] == message_cid

    change = post(stack.url("events") + "/events", stage_change(str(lead_row["id"])), headers=EVENTS_AUTH)
    assert change.status == 202, change.text
    change_cid = change.json()["correlation_id"]
    move = wait_for(lambda: query(clean_db, "SELECT * FROM pipeline_moves WHERE lead_id = %s", lead_row["id"]))[0]
    assert (move["from_stage"], move["to_stage"], move["applied"]) == ("triagem", "qualificado", True)
    assert move["reason"] == "Lead respondeu ao primeiro contato"
    assert move["correlation_id"] == change_cid
    lead_after = query(clean_db, "SELECT stage, last_correlation_id FROM leads WHERE id = %s", lead_row["id"])[0]
    assert lead_after == {"stage": "qualificado", "last_correlation_id": change_cid}

    events = query(clean_db, "SELECT event_type, status, attempts, correlation_id FROM events ORDER BY id")
    assert events == [
        {"event_type": "lead_created", "status": "processed", "attempts": 1, "correlation_id": "seed-lead-1"},
        {"event_type": "message_received", "status": "processed", "attempts": 1, "correlation_id": message_cid},
        {"event_type": "stage_changed", "status": "processed", "attempts": 1, "correlation_id": change_cid},
    ]
    # Every function logged JSON lines carrying the correlation id it handled.
    log = stack.log()
    for function, cid in (("leads", "seed-lead-1"), ("leads_writer", "seed-lead-1"),
                          ("conversations_writer", message_cid), ("pipeline_writer", change_cid)):
        assert f'[{function}] {{"severity": "INFO"' in log
        assert any(f'"function": "{function}"' in line and cid in line for line in log.splitlines()), function
    assert "11999998888" not in log and "joao@teste.com" not in log, "phones and e-mails must be masked in logs"
