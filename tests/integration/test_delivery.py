"""Idempotency, retries and dead-lettering through the running stack."""

from __future__ import annotations

import uuid

import pytest
from google.cloud import pubsub_v1

from shared.envelope import Envelope
from tests.conftest import RunningStack, query, wait_for
from tests.http import post
from tests.seeds import EVENTS_AUTH, WHATSAPP

pytestmark = pytest.mark.integration


def test_the_same_whatsapp_webhook_twice_writes_one_message_and_one_duplicate(stack: RunningStack, clean_db) -> None:
    first = post(stack.url("whatsapp"), WHATSAPP)
    second = post(stack.url("whatsapp"), WHATSAPP)
    assert first.status == second.status == 202
    assert first.json()["event_id"] == second.json()["event_id"]
    assert first.json()["correlation_id"] != second.json()["correlation_id"]

    def settled() -> list[dict[str, object]] | None:
        rows = query(clean_db, "SELECT status, correlation_id FROM events ORDER BY id")
        return rows if len(rows) == 2 and all(r["status"] != "processing" for r in rows) else None

    rows = wait_for(settled)
    assert sorted(r["status"] for r in rows) == ["duplicate", "processed"]
    assert {r["correlation_id"] for r in rows} == {first.json()["correlation_id"], second.json()["correlation_id"]}
    assert query(clean_db, "SELECT count(*) AS n FROM messages") == [{"n": 1}]
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 1}]


def test_a_write_that_keeps_failing_is_dead_lettered_and_recorded_failed(stack: RunningStack, clean_db) -> None:
    missing_lead = str(uuid.uuid4())
    response = post(stack.url("events"), {"event_type": "stage_changed", "lead_id": missing_lead,
                                          "payload": {"to_stage": "qualificado"}}, headers=EVENTS_AUTH)
    assert response.status == 202
    event_id = response.json()["event_id"]

    subscriber = pubsub_v1.SubscriberClient()
    dlq = subscriber.subscription_path(stack.project, "stage-changed-dlq-ops")
    try:
        def pulled() -> list[pubsub_v1.types.ReceivedMessage]:
            return list(subscriber.pull(subscription=dlq, max_messages=10, timeout=5).received_messages)

        received = wait_for(pulled, timeout=90, interval=1)
        assert len(received) == 1
        message = received[0].message
        envelope = Envelope.from_bytes(message.data)
        assert envelope.event_id == event_id
        assert message.attributes["event_id"] == event_id
        assert message.attributes["correlation_id"] == response.json()["correlation_id"]
        assert message.attributes["CloudPubSubDeadLetterSourceSubscription"] == "stage-changed-pipeline-writer"
        assert message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        subscriber.acknowledge(subscription=dlq, ack_ids=[received[0].ack_id])
    finally:
        subscriber.close()

    event = query(clean_db, "SELECT status, attempts, last_error FROM events WHERE event_id = %s", event_id)[0]
    assert event["status"] == "failed"
    assert event["attempts"] == 5
    assert "LeadNotFound" in event["last_error"]
    assert query(clean_db, "SELECT count(*) AS n FROM pipeline_moves") == [{"n": 0}]
