"""The edge's answers, with a recording publisher at the port boundary."""

import pytest

from shared.health import check
from shared.sources import lead_form
from tests.fakes import RecordingPublisher
from tests.seeds import LEAD
from tests.unit.edge_helpers import call, call_events, request


def test_a_valid_lead_is_published_and_answered_202_with_ids() -> None:
    response, publisher = call(lead_form.adapt, request(LEAD, headers={"X-Correlation-ID": "abc-123"}))
    assert response.status == 202
    assert response.headers["X-Correlation-ID"] == "abc-123"
    [envelope] = publisher.published
    assert response.body == {"status": "accepted", "event_id": envelope.event_id, "correlation_id": "abc-123"}
    assert envelope.correlation_id == "abc-123"
    assert envelope.payload["phone"] == "5511999998888"


def test_a_malformed_correlation_id_is_replaced_by_a_uuid() -> None:
    response, publisher = call(lead_form.adapt, request(LEAD, headers={"X-Correlation-ID": "bad id\n<script>"}))
    assert response.status == 202
    assert len(publisher.published[0].correlation_id) == 36


@pytest.mark.parametrize(("req", "status", "error"), [
    (request(LEAD, method="GET"), 405, "method_not_allowed"),
    (request(LEAD, method="PUT"), 405, "method_not_allowed"),
    (request(raw=b"x" * 5000), 413, "payload_too_large"),
    (request(raw=b"name=joao", content_type="application/x-www-form-urlencoded"), 415, "unsupported_media_type"),
    (request(raw=b"{}", content_type=None), 415, "unsupported_media_type"),
    (request(raw=b"{not json"), 400, "invalid_json"),
    (request(raw=b"\xff\xfe"), 400, "invalid_json"),
    (request([1, 2]), 400, "invalid_request"),
])
def test_bad_requests_get_a_clear_4xx_and_nothing_is_published(req, status: int, error: str) -> None:
    response, publisher = call(lead_form.adapt, req)
    assert response.status == status
    assert response.body["error"] == error
    assert publisher.published == []


def test_invalid_fields_are_each_named() -> None:
    response, publisher = call(lead_form.adapt, request({"name": "", "phone": "12", "email": "not-an-email"}))
    assert response.status == 400
    fields = {f["field"] for f in response.body["fields"]}
    assert fields == {"name", "phone", "email"}
    assert publisher.published == []


def test_a_lead_needs_a_way_to_reach_it() -> None:
    response, _ = call(lead_form.adapt, request({"name": "Maria"}))
    assert response.status == 400
    assert "phone or an email" in response.body["fields"][0]["message"]


def test_unknown_form_fields_are_kept_under_extra_and_source_id_makes_the_event_id_stable() -> None:
    body = {**LEAD, "source_lead_id": "form-77", "area_m2": 120, "utm_campaign": "pisos-vinilicos"}
    _, first = call(lead_form.adapt, request(body))
    _, second = call(lead_form.adapt, request(body))
    assert first.published[0].payload["extra"] == {"area_m2": 120, "utm_campaign": "pisos-vinilicos"}
    assert first.published[0].event_id == second.published[0].event_id


def test_an_idempotency_key_makes_a_retried_call_the_same_event() -> None:
    _, first = call(lead_form.adapt, request(LEAD, headers={"Idempotency-Key": "k-1"}))
    _, second = call(lead_form.adapt, request(LEAD, headers={"Idempotency-Key": "k-1"}))
    _, third = call(lead_form.adapt, request(LEAD))
    assert first.published[0].event_id == second.published[0].event_id != third.published[0].event_id


def test_an_unconfirmed_publish_is_a_503_so_the_platform_retries() -> None:
    response, _ = call(lead_form.adapt, request(LEAD), publisher=RecordingPublisher(fail=True))
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert response.body["error"] == "publish_failed"


AUTH = {"Authorization": "Bearer test-key"}
LEAD_ID = "0b9d6c1e-4a55-4f0e-9a3b-2f1d7c2e8a10"


def test_events_require_the_api_key() -> None:
    body = {"event_type": "stage_changed", "lead_id": LEAD_ID, "payload": {"to_stage": "qualificado"}}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic test-key"}):
        response, publisher = call_events(request(body, headers=headers))
        assert response.status == 401
        assert publisher.published == []
    response, _ = call_events(request(body, headers=AUTH), events_api_key=None)
    assert response.status == 401, "no key configured must mean closed, not open"


def test_each_event_type_is_validated_by_its_own_payload_model() -> None:
    ok = {
        "stage_changed": {"to_stage": "qualificado"},
        "proposal_sent": {"proposal_ref": "P-1", "amount": "12500.50"},
        "won": {"proposal_ref": "P-1"},
        "obra_created": {"obra_ref": "OB-1", "title": "Piso vinílico sala", "area_m2": 42},
    }
    for event_type, payload in ok.items():
        response, publisher = call_events(request(
            {"event_type": event_type, "lead_id": LEAD_ID, "payload": payload}, headers=AUTH))
        assert response.status == 202, (event_type, response.body)
        assert publisher.published[0].payload["lead_id"] == LEAD_ID
    response, _ = call_events(request(
        {"event_type": "stage_changed", "phone": "11999998888", "payload": {"to_stage": "qualificado"}}, headers=AUTH))
    assert response.status == 202


@pytest.mark.parametrize(("body", "fields"), [
    ({"event_type": "nope", "lead_id": LEAD_ID}, {"event_type"}),
    ({"event_type": "reply_requested", "lead_id": LEAD_ID, "payload": {}}, {"event_type"}),  # internal only
    ({"event_type": "leadgen_received", "lead_id": LEAD_ID, "payload": {}}, {"event_type"}),
    ({"event_type": "stage_changed", "payload": {"to_stage": "qualificado"}}, {"payload"}),
    ({"event_type": "stage_changed", "lead_id": "not-a-uuid", "payload": {"to_stage": "qualificado"}},
     {"payload.lead_id"}),
    ({"event_type": "stage_changed", "lead_id": LEAD_ID, "payload": {"to_stage": "done"}}, {"payload.to_stage"}),
    ({"event_type": "proposal_sent", "lead_id": LEAD_ID, "payload": {"amount": -1}},
     {"payload.proposal_ref", "payload.amount"}),
    ({"event_type": "stage_changed", "lead_id": LEAD_ID, "surprise": 1, "payload": {"to_stage": "novo"}},
     {"surprise"}),
])
def test_bad_events_name_their_fields(body: dict[str, object], fields: set[str]) -> None:
    response, publisher = call_events(request(body, headers=AUTH))
    assert response.status == 400, response.body
    assert {f["field"] for f in response.body["fields"]} == fields
    assert publisher.published == []


def test_health_detail_reports_each_topic() -> None:
    assert check(detail=False).status == 200
    healthy = check(detail=True, publisher=RecordingPublisher())
    assert healthy.status == 200 and set(healthy.body["topics"]) >= {"lead_created", "won"}
    broken = check(detail=True, publisher=RecordingPublisher(fail=True))
    assert broken.status == 503 and broken.body["status"] == "degraded"


def test_the_instances_first_request_freezes_what_it_made_for_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """After one request the instance's long-lived objects are out of the collector's full passes (gc.freeze)."""
    import gc

    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from shared import http_adapter

    publisher = RecordingPublisher()
    monkeypatch.setattr(http_adapter, "get_publisher", lambda: publisher)
    monkeypatch.setattr(http_adapter, "_settled", False)
    gc.unfreeze()
    try:
        flask_request = Request(EnvironBuilder(method="POST", json=LEAD).get_environ())
        body, status, _ = http_adapter.serve(flask_request, function="leads", adapter=lead_form.adapt)
        assert status == 202 and len(publisher.published) == 1, body
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
