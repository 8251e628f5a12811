"""Every provider's delivery-status callback (the fixtures are their documented shapes) -> `message_status`."""

from __future__ import annotations

from typing import Any

import pytest

from shared.envelope import event_id_for
from shared.sources import evolution, gupshup, meta_cloud, zapi
from tests.fixtures import load
from tests.unit.edge_helpers import call, request


def statuses(adapt: Any, body: Any) -> list[dict[str, Any]]:
    response, publisher = call(lambda inbound: adapt(inbound, None), request(body))
    assert response.status == 202, response.body
    for envelope in publisher.published:
        assert envelope.event_type == "message_status" and envelope.source == envelope.payload["provider"]
        assert envelope.event_id == event_id_for("default", envelope.source, "message_status",
                                                 f"{envelope.payload['provider_message_id']}:"
                                                 f"{envelope.payload['status']}")
    return [e.payload for e in publisher.published]


def ignored(adapt: Any, body: Any) -> str:
    response, publisher = call(lambda inbound: adapt(inbound, None), request(body))
    assert response.status == 200 and publisher.published == []
    return str(response.body["reason"])


def test_evolution_messages_update() -> None:
    assert statuses(evolution.adapt, load("evolution", "messages_update")) == [{
        "provider": "evolution", "provider_message_id": "3EB0A1B2C3D4E5F60007", "status": "read",
        "recipient": "5511977776666"}]


@pytest.mark.parametrize(("raw", "state"), [("SERVER_ACK", "sent"), ("DELIVERY_ACK", "delivered"),
                                             ("PLAYED", "read"), ("ERROR", "failed"), (3, "delivered")])
def test_evolution_acks_by_name_or_number(raw: Any, state: str) -> None:
    body = load("evolution", "messages_update")
    body["data"]["status"] = raw
    assert statuses(evolution.adapt, body)[0]["status"] == state


def test_evolution_v1_list_shape_and_what_is_not_a_delivery() -> None:
    body = {"event": "messages.update", "instance": "acme-pisos", "data": [
        {"key": {"remoteJid": "5511977776666@s.whatsapp.net", "fromMe": True, "id": "A1"}, "update": {"status": 4}},
        {"key": {"remoteJid": "5511977776666@s.whatsapp.net", "fromMe": False, "id": "A2"}, "update": {"status": 4}},
    ]}
    assert [(s["provider_message_id"], s["status"]) for s in statuses(evolution.adapt, body)] == [("A1", "read")]
    pending = load("evolution", "messages_update")
    pending["data"]["status"] = "PENDING"
    assert ignored(evolution.adapt, pending) == "messages.update: no delivery state we track"


def test_zapi_message_status_callback() -> None:
    (status,) = statuses(zapi.adapt, load("zapi", "message_status"))
    assert status == {"provider": "zapi", "provider_message_id": "A20DA9C0183A2D35A260F53F5D2B9249", "status": "read",
                      "recipient": "5511977776666", "occurred_at": "2025-11-20T12:01:40Z"}
    by_me = {**load("zapi", "message_status"), "status": "READ_BY_ME"}
    assert ignored(zapi.adapt, by_me) == "MessageStatusCallback: no delivery state we track"


def test_meta_statuses_and_failures_with_their_reason() -> None:
    (status,) = statuses(meta_cloud.adapter("meta"), load("meta", "statuses"))
    assert status == {"provider": "meta", "provider_message_id": "wamid.OUTBOUND1", "status": "delivered",
                      "recipient": "5511977776666", "occurred_at": "2025-11-20T12:05:00Z"}
    failed = load("meta", "statuses")
    raw = failed["entry"][0]["changes"][0]["value"]["statuses"][0]
    raw.update(status="failed", biz_opaque_callback_data="ct-abc", errors=[
        {"code": 131047, "title": "Re-engagement message", "error_data": {"details": "more than 24 hours"}}])
    (status,) = statuses(meta_cloud.adapter("360dialog"), failed)
    assert (status["provider"], status["status"], status["callback_ref"]) == ("360dialog", "failed", "ct-abc")
    assert status["reason"] == "131047: Re-engagement message - more than 24 hours"


def test_gupshup_message_event() -> None:
    (status,) = statuses(gupshup.adapt, load("gupshup", "message_event"))
    assert status == {"provider": "gupshup", "provider_message_id": "ee4a68a0-1203-4c85-8dc3-49d0b3226a35",
                      "status": "delivered", "recipient": "5511977776666", "occurred_at": "2025-11-20T12:01:40Z"}
    enqueued = load("gupshup", "message_event")
    enqueued["payload"]["type"] = "enqueued"
    assert ignored(gupshup.adapt, enqueued) == "message-event: no delivery state we track"
