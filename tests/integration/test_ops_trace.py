"""`ctower trace` after the three seed requests: each step, by any of the ids an operator has."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ops.cli import main
from tests.conftest import RunningStack, query, wait_for
from tests.http import post
from tests.seeds import EVENTS_AUTH, LEAD, WHATSAPP, stage_change

pytestmark = pytest.mark.integration


def ctower(stack: RunningStack, *args: str, **env: str | None) -> Result:
    base: dict[str, str | None] = {"CT_LOCAL_DIR": stack.env["CT_LOCAL_DIR"], "PUBSUB_EMULATOR_HOST": None,
                                   "GOOGLE_CLOUD_PROJECT": None, "DATABASE_URL": None, "CLOUD_SQL_INSTANCE": None}
    return CliRunner().invoke(main, list(args), env={**base, **env}, catch_exceptions=False)


@pytest.fixture(scope="module")
def seeded(stack: RunningStack, database: Any) -> dict[str, str]:
    with database.transaction() as cur:
        cur.execute("TRUNCATE obras, proposals, pipeline_moves, messages, conversations, leads, events "
                    "RESTART IDENTITY CASCADE")
    lead = post(stack.url("leads") + "/webhook/lead", LEAD, headers={"X-Correlation-ID": "trace-lead-1"})
    assert lead.status == 202, lead.text
    lead_id = str(wait_for(lambda: query(database, "SELECT id FROM leads WHERE phone = '5511999998888'"))[0]["id"])
    message = post(stack.url("whatsapp") + "/webhook/whatsapp", WHATSAPP)
    assert message.status == 202, message.text
    wait_for(lambda: query(database, "SELECT 1 FROM messages WHERE provider_message_id = 'TEST123456'"))
    change = post(stack.url("events") + "/events", stage_change(lead_id), headers=EVENTS_AUTH)
    assert change.status == 202, change.text
    wait_for(lambda: query(database, "SELECT 1 FROM pipeline_moves WHERE lead_id = %s", lead_id))
    wait_for(lambda: all(r["status"] == "processed" for r in query(database, "SELECT status FROM events")))
    return {"lead": "trace-lead-1", "message": message.json()["correlation_id"],
            "change": change.json()["correlation_id"], "lead_id": lead_id,
            "change_event": change.json()["event_id"]}


def test_trace_of_each_seed_request_shows_its_steps(stack: RunningStack, seeded: dict[str, str]) -> None:
    lead = ctower(stack, "trace", seeded["lead"])
    assert lead.exit_code == 0, lead.output
    assert "correlation_id trace-lead-1: 1 event(s)" in lead.stdout
    assert "event lead_created" in lead.stdout and "processed, attempts 1" in lead.stdout
    assert "lead created" in lead.stdout and "*********8888" in lead.stdout and "j***@teste.com" in lead.stdout
    assert "5511999998888" not in lead.stdout and "joao@teste.com" not in lead.stdout  # masked

    message = ctower(stack, "trace", seeded["message"])
    assert "event message_received" in message.stdout
    assert "message inbound" in message.stdout and "TEST123456" in message.stdout
    assert "conversation" in message.stdout and "5511999998888" not in message.stdout

    change = as_json(ctower(stack, "trace", seeded["change"], "--json"))
    assert change["kind"] == "correlation_id"
    assert [(e["event_type"], e["status"], e["attempts"]) for e in change["events"]] == [("stage_changed",
                                                                                         "processed", 1)]
    steps = [s["what"] for s in change["timeline"]]
    assert steps[0] == "event stage_changed" and "stage move" in steps and "lead updated" in steps
    move = next(s for s in change["timeline"] if s["what"] == "stage move")
    assert move["detail"] == "triagem -> qualificado (applied): Lead respondeu ao primeiro contato"
    assert "logging_filter" not in change  # local: no Cloud Logging


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_trace_by_lead_phone_or_event_id_shows_the_whole_journey(stack: RunningStack,
                                                                 seeded: dict[str, str]) -> None:
    cids = sorted([seeded["lead"], seeded["message"], seeded["change"]])
    by_lead = as_json(ctower(stack, "trace", seeded["lead_id"], "--json"))
    assert by_lead["kind"] == "lead" and by_lead["lead_ids"] == [seeded["lead_id"]]
    assert by_lead["correlation_ids"] == cids
    assert [e["event_type"] for e in by_lead["events"]] == ["lead_created", "message_received", "stage_changed"]
    by_phone = as_json(ctower(stack, "trace", "+55 (11) 99999-8888", "--json"))
    assert by_phone["kind"] == "phone" and by_phone["correlation_ids"] == cids
    by_event = as_json(ctower(stack, "trace", seeded["change_event"], "--json"))
    assert by_event["kind"] == "event_id" and by_event["correlation_ids"] == [seeded["change"]]
    unmasked = ctower(stack, "trace", seeded["lead"], "--show-pii")
    assert "5511999998888" in unmasked.stdout and "joao@teste.com" in unmasked.stdout


def test_trace_against_the_cloud_prints_the_logging_filter_and_command(stack: RunningStack,
                                                                       seeded: dict[str, str]) -> None:
    cloud = ctower(stack, "trace", seeded["change"], "--project", "ct-prod",
                   DATABASE_URL=stack.env["DATABASE_URL"])
    assert cloud.exit_code == 0, cloud.output
    assert f'Cloud Logging filter:  jsonPayload.correlation_id="{seeded["change"]}"' in cloud.stdout
    assert (f"gcloud logging read 'jsonPayload.correlation_id=\"{seeded['change']}\"' --project ct-prod "
            "--freshness 7d --format json") in cloud.stdout


def test_trace_of_an_unknown_id_exits_1(stack: RunningStack, seeded: dict[str, str]) -> None:
    missing = ctower(stack, "trace", "no-such-request")
    assert missing.exit_code == 1 and "nothing found" in missing.stdout
