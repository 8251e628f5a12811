"""The one Pub/Sub runner: poison raised (dead-lettered) or acknowledged, outcome logged, processor called once."""

from __future__ import annotations

import base64
import logging

import pytest
from cloudevents.http import CloudEvent

from shared.envelope import Envelope, build_envelope
from shared.payloads import LeadCreated, MessageReceived
from shared.subscriber import PoisonMessage, handle


def pushed(data: bytes, topic: str) -> CloudEvent:
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "7",
                       "source": f"//pubsub.googleapis.com/projects/p/topics/{topic}"},
                      {"message": {"data": base64.b64encode(data).decode(), "messageId": "7",
                                   "attributes": {"event_id": "e-9"}}})


MESSAGE = build_envelope(event_type="message_received", tenant="default", source="test", correlation_id="c-1",
                         payload=MessageReceived(provider="evolution", provider_message_id="m1",
                                                 phone="5511977776666", chat_id="5511977776666", text="oi"))
LEAD = build_envelope(event_type="lead_created", payload=LeadCreated(phone="5511977776666"), tenant="default",
                      source="test", correlation_id="c-2")


def test_the_processor_gets_the_envelope_and_message_id_and_its_outcome_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[Envelope, str | None]] = []

    def process(envelope: Envelope, message_id: str | None) -> str:
        seen.append((envelope, message_id))
        return "over_limit: tenant over its messages_per_day"

    with caplog.at_level(logging.INFO):
        outcome = handle(pushed(MESSAGE.to_bytes(), "message-received"), function="assistant", process=process,
                         report="assistant turn: %s")
    assert outcome.startswith("over_limit") and seen == [(MESSAGE, "7")]
    [line] = [r for r in caplog.records if r.getMessage().startswith("assistant turn: over_limit")]
    assert line.levelno == logging.WARNING and line.__dict__["event_status"] == "over_limit"


@pytest.mark.parametrize(("data", "acknowledged"), [(b"not an envelope", "poison: not an envelope"),
                                                    (LEAD.to_bytes(), "poison: lead_created is not handled here")])
def test_poison_raises_for_a_writer_and_is_acknowledged_where_another_subscription_dead_letters_it(
        data: bytes, acknowledged: str) -> None:
    def process(envelope: Envelope, message_id: str | None) -> str:
        raise AssertionError("a poison message must not reach the processor")

    event = pushed(data, "message-received")
    with pytest.raises(PoisonMessage):
        handle(event, function="conversations_writer", process=process)
    outcome = handle(event, function="assistant", process=process, acknowledge_poison="another copy dead-letters")
    assert outcome == acknowledged


def test_the_runner_needs_a_database_or_a_processor() -> None:
    with pytest.raises(TypeError):
        handle(pushed(MESSAGE.to_bytes(), "message-received"), function="conversations_writer")
