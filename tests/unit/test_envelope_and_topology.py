import json

import pytest
from pydantic import ValidationError

from shared.envelope import SCHEMA_VERSION, Envelope, build_envelope, event_id_for
from shared.payloads import E164_CONTEXT, LeadCreated
from shared.topology import TOPOLOGY_FILE, load_topology, parse_topology


def test_event_id_is_deterministic_only_when_the_source_gives_an_id() -> None:
    assert event_id_for("t", "evolution", "message_received", "ABC") == event_id_for("t", "evolution",
                                                                                     "message_received", "ABC")
    assert event_id_for("t", "evolution", "message_received", "ABC") != event_id_for("u", "evolution",
                                                                                     "message_received", "ABC")
    assert event_id_for("t", "s", "lead_created", None) != event_id_for("t", "s", "lead_created", None)


def test_envelope_round_trips_and_carries_filter_fields_as_attributes() -> None:
    envelope = build_envelope(event_type="lead_created", payload=LeadCreated(phone="11999998888"), tenant="default",
                              source="manual", correlation_id="c-1", source_id="form-9")
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.payload == {"phone": "5511999998888", "source": "manual", "extra": {}}
    assert envelope.attributes() == {"event_type": "lead_created", "event_id": envelope.event_id,
                                     "correlation_id": "c-1", "tenant": "default", "source": "manual",
                                     "schema_version": str(SCHEMA_VERSION)}


@pytest.mark.parametrize(("written", "e164"), [("+1 415 555 0123", "14155550123"),
                                               ("+351 912 345 678", "351912345678"),
                                               ("(11) 97777-6666", "5511977776666")])
def test_a_phone_from_any_country_reads_back_the_same_from_the_envelope(written: str, e164: str) -> None:
    """The envelope carries E.164 digits; reading them back must not take them for a Brazilian number."""
    envelope = build_envelope(event_type="lead_created", payload=LeadCreated(phone=written), tenant="default",
                              source="manual", correlation_id="c-1")
    assert envelope.payload["phone"] == e164
    assert Envelope.from_bytes(envelope.to_bytes()).typed_payload().phone == e164  # type: ignore[union-attr]


def test_an_envelope_from_the_future_is_refused() -> None:
    envelope = build_envelope(event_type="lead_created", payload=LeadCreated(phone="11999998888"), tenant="default",
                              source="manual", correlation_id="c-1")
    data = json.loads(envelope.to_bytes())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="newer"):
        Envelope.from_bytes(json.dumps(data).encode())


def test_topology_file_is_consistent() -> None:
    topology = load_topology()
    assert topology.subscribed_event_types("pipeline_writer") == {"stage_changed", "proposal_sent", "won"}
    for et in topology.event_types.values():
        for function in et.subscriptions.values():
            assert topology.functions[function].trigger == "pubsub"
    ports = [f.local_port for f in topology.functions.values()]
    assert len(set(ports)) == len(ports)


def test_topology_checks_refuse_what_would_never_deliver() -> None:
    raw = json.loads(TOPOLOGY_FILE.read_text())
    raw["event_types"]["won"]["subscriptions"] = {"won-x": "whatsapp"}
    with pytest.raises(ValueError, match="not a pubsub function"):
        parse_topology(raw)
    raw = json.loads(TOPOLOGY_FILE.read_text())
    raw["event_types"]["won"]["dead_letter_topic"] = "lead-created"
    with pytest.raises(ValueError, match="used twice"):
        parse_topology(raw)


def test_a_payload_read_back_keeps_what_the_edge_normalised_and_parses_anything_else() -> None:
    """Subscribers read envelopes without the phone and e-mail parsers; a value in another shape is still parsed."""
    read = LeadCreated.model_validate({"phone": "14155550123", "email": "ana@example.com"}, context=E164_CONTEXT)
    assert (read.phone, read.email) == ("14155550123", "ana@example.com")
    other = LeadCreated.model_validate({"phone": "+55 (11) 99999-8888", "email": "Ana <ana@EXAMPLE.com>"},
                                       context=E164_CONTEXT)
    assert (other.phone, other.email) == ("5511999998888", "ana@example.com")
    with pytest.raises(ValidationError, match="not a valid email address"):
        LeadCreated.model_validate({"phone": "14155550123", "email": "ana at example"}, context=E164_CONTEXT)
    with pytest.raises(ValidationError, match="not a phone number"):
        LeadCreated.model_validate({"phone": "123"}, context=E164_CONTEXT)
