"""Every golden payload's envelopes, written by the real writers into a real Postgres, row by row.

The unit suite proves what the edge publishes for each documented body; this proves the
writers store all of it: the sender as E.164 digits (foreign numbers too), the shared
message type and the provider's raw one, the ad referral (also on the new lead), and a
status reply flag.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.db import Database
from shared.envelope import Envelope
from shared.writers import writer_for
from shared.writers.ledger import Result, process
from tests.conftest import query
from tests.unit.test_golden_payloads import CASES

pytestmark = pytest.mark.integration


def published(case: Path) -> list[Envelope]:
    expected = json.loads(case.with_name(case.name.replace(".input.json", ".expected.json")).read_text("utf-8"))
    return [Envelope.model_validate({**e, "schema_version": 1, "correlation_id": f"golden-{case.stem}",
                                     "tenant": "default", "occurred_at": e["occurred_at"] or "2025-11-20T12:00:00Z",
                                     "received_at": "2025-11-20T12:00:01Z"})
            for e in expected["published"] if e["event_type"] in ("message_received", "lead_created")]


def test_every_golden_message_and_lead_is_written_as_read(clean_db: Database) -> None:
    envelopes = [e for case in CASES for e in published(case)]
    assert len(envelopes) >= 60
    for n, envelope in enumerate(envelopes):
        assert process(clean_db, envelope, f"m-{n}", writer_for(envelope.event_type)) == Result.PROCESSED
    messages = [e.payload for e in envelopes if e.event_type == "message_received"]
    rows = {(r["provider"], r["provider_message_id"]): r for r in query(
        clean_db, "SELECT provider, provider_message_id, sender_phone, message_type, raw_type, body, media, "
                  "referral, status_reply FROM messages")}
    assert len(rows) == len(messages)
    for payload in messages:
        row = rows[(payload["provider"], payload["provider_message_id"])]
        assert row == {"provider": payload["provider"], "provider_message_id": payload["provider_message_id"],
                       "sender_phone": payload["phone"], "message_type": payload["message_type"],
                       "raw_type": payload["raw_type"], "body": payload.get("text"), "media": payload.get("media"),
                       "referral": payload.get("referral"), "status_reply": bool(payload.get("status_reply"))}


def test_foreign_senders_ads_and_status_replies_reach_the_lead(clean_db: Database) -> None:
    by_name = {f"{c.parent.name}/{c.name.removesuffix('.input.json')}": c for c in CASES}
    for n, name in enumerate(("meta/text_foreign_sender", "meta/click_to_whatsapp_ad_referral",
                              "zapi/status_reply", "evolution/foreign_sender_portugal")):
        [envelope] = published(by_name[name])
        process(clean_db, envelope, f"m-{n}", writer_for(envelope.event_type))
    leads = {r["phone"]: r for r in query(clean_db, "SELECT phone, name, extra FROM leads")}
    assert set(leads) == {"16505551234", "16315551234", "5544999999999", "351912345678"}
    assert leads["16315551234"]["extra"]["referral"]["source_id"] == "120226305854810726"
    assert leads["16315551234"]["extra"]["referral"]["ctwa_clid"].startswith("Aff-")
    assert query(clean_db, "SELECT status_reply FROM messages WHERE provider = 'zapi'") == [{"status_reply": True}]
