"""The local pusher's decisions: Cloud push's backoff and success codes, its push JSON, its bounds.

Fakes only at its ports: the Pub/Sub subscriber (pull / acknowledge / modify_ack_deadline) and
the HTTP POST. The push JSON goes through functions-framework itself and the subscriber
runner's decoding, as a real function receives it.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from google.protobuf import timestamp_pb2
from google.pubsub_v1.types import PubsubMessage, PullResponse, ReceivedMessage

from ops.provision import DeliveryPolicy, Route
from ops.pusher import Pusher, backoff_seconds, push_body, read_snapshot, retry_after
from shared.envelope import Envelope, build_envelope
from shared.payloads import LeadCreated
from shared.topology import load_topology

LOCAL = DeliveryPolicy(max_delivery_attempts=20, min_backoff_seconds=1, max_backoff_seconds=10)


def test_the_backoff_doubles_per_attempt_from_the_minimum_up_to_the_maximum() -> None:
    assert [backoff_seconds(LOCAL, attempt) for attempt in range(1, 8)] == [1, 2, 4, 8, 10, 10, 10]
    assert backoff_seconds(DeliveryPolicy(min_backoff_seconds=0, max_backoff_seconds=600), 1) == 1
    assert backoff_seconds(DeliveryPolicy(min_backoff_seconds=10, max_backoff_seconds=600), 100) == 600


def test_the_backoffs_add_up_to_the_budget_the_topology_documents() -> None:
    """Every attempt but the last waits its backoff: the time a message is retried before it is dead-lettered."""
    policies = [p for et in load_topology().event_types.values() for p in et.retry_policies.values()]
    assert policies
    for own in policies:
        policy = DeliveryPolicy(own.max_delivery_attempts, own.minimum_backoff_seconds, own.maximum_backoff_seconds)
        waits = [retry_after(500, attempt, policy) for attempt in range(1, own.max_delivery_attempts)]
        assert sum(w or 0 for w in waits) == own.budget_seconds()


@pytest.mark.parametrize("status", [102, 200, 201, 202, 204])
def test_cloud_pushs_success_codes_acknowledge(status: int) -> None:
    assert retry_after(status, 1, LOCAL) is None


@pytest.mark.parametrize("status", [None, 203, 301, 400, 404, 429, 500, 503])
def test_anything_else_waits_the_backoff_and_the_last_attempt_dead_letters_at_once(status: int | None) -> None:
    assert retry_after(status, 3, LOCAL) == 4
    assert retry_after(status, 20, LOCAL) == 0  # the emulator forwards it to the dead-letter topic now


def _message(data: bytes, attributes: dict[str, str], message_id: str = "17") -> Any:
    published = timestamp_pb2.Timestamp()
    published.FromJsonString("2026-11-26T12:18:46.853Z")
    return PubsubMessage.pb(PubsubMessage(data=data, attributes=attributes, message_id=message_id,
                                          publish_time=published))


def test_the_push_body_has_the_emulators_fields_and_cloud_pushs_delivery_attempt() -> None:
    body = json.loads(push_body(_message(b'{"a": 1}', {"k": "v"}), "projects/p/subscriptions/s", 3))
    # What the emulator posted (captured from 0.8.20), plus deliveryAttempt as Cloud push sends it.
    assert body == {"subscription": "projects/p/subscriptions/s", "deliveryAttempt": 3,
                    "message": {"data": "eyJhIjogMX0=", "attributes": {"k": "v"}, "messageId": "17",
                                "message_id": "17", "publishTime": "2026-11-26T12:18:46.853Z",
                                "publish_time": "2026-11-26T12:18:46.853Z"}}


def test_functions_framework_hands_the_subscriber_runner_the_envelope_the_topic_and_the_ids(tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text(
        "import json, pathlib\nimport functions_framework\nfrom shared import subscriber\n\n"
        "@functions_framework.cloud_event\ndef probe(cloud_event):\n"
        "    m = subscriber.decode(cloud_event)\n"
        "    pathlib.Path(__file__).with_name('seen.json').write_text(json.dumps(\n"
        "        [m.envelope.model_dump_json(), m.message_id, m.topic, m.attributes]))\n", encoding="utf-8")
    app = functions_framework.create_app(target="probe", source=str(source))
    envelope = build_envelope(event_type="lead_created", payload=LeadCreated(phone="11999998888"),
                              tenant="default", source="form", correlation_id="c-1")
    body = push_body(_message(envelope.to_bytes(), envelope.attributes(), "42"), "projects/p/subscriptions/s", 1)
    answer = app.test_client().post("/projects/p/topics/lead-created", data=body,
                                    headers={"Content-Type": "application/json"})
    assert answer.status_code == 200
    data, message_id, topic, attributes = json.loads((tmp_path / "seen.json").read_text(encoding="utf-8"))
    assert (Envelope.model_validate_json(data), message_id, topic, attributes) == (
        envelope, "42", "lead-created", envelope.attributes())


# -- the pusher, at its ports ------------------------------------------------------------------
class FakeSubscriber:
    """The Pub/Sub port: hands out the messages given to it once, then long-polls empty; records settlements."""

    def __init__(self, messages: list[tuple[str, int]]) -> None:
        self.waiting = [ReceivedMessage(ack_id=f"ack-{mid}", delivery_attempt=attempt,
                                        message=PubsubMessage(data=mid.encode(), message_id=mid))
                        for mid, attempt in messages]
        self.settled: dict[str, int | None] = {}  # ack id -> None (acknowledged) or the ack deadline set
        self._lock = threading.Lock()

    def pull(self, request: dict[str, Any], timeout: float, retry: Any) -> PullResponse:
        with self._lock:
            taken, self.waiting = self.waiting[:request["max_messages"]], self.waiting[request["max_messages"]:]
        if not taken:
            time.sleep(0.01)
        return PullResponse(received_messages=taken)

    def acknowledge(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.settled.update(dict.fromkeys(request["ack_ids"]))

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        with self._lock:
            self.settled.update(dict.fromkeys(request["ack_ids"], request["ack_deadline_seconds"]))


def _route(policy: DeliveryPolicy = LOCAL) -> Route:
    return Route("sub", "top", "top-dlq", "writer", "http://127.0.0.1:1/projects/p/topics/top", policy)


def _run(pusher: Pusher, subscriber: FakeSubscriber, count: int) -> None:
    pusher.start()
    try:
        deadline = time.monotonic() + 10
        while len(subscriber.settled) < count and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        pusher.stop()


def test_each_message_is_acknowledged_or_given_its_backoff_by_its_answer(tmp_path: Path) -> None:
    answers = {"ok": 200, "no-content": 204, "broken": 500, "refused": None, "last": 503}
    subscriber = FakeSubscriber([("ok", 1), ("no-content", 1), ("broken", 3), ("refused", 1), ("last", 5)])
    posted: list[tuple[str, dict[str, Any], float]] = []

    def post() -> Any:
        def send(url: str, body: bytes, timeout: float) -> int | None:
            decoded = json.loads(body)
            posted.append((url, decoded, timeout))
            return answers[decoded["message"]["messageId"]]
        return send

    policy = DeliveryPolicy(max_delivery_attempts=5, min_backoff_seconds=1, max_backoff_seconds=10,
                            ack_deadline_seconds=60)
    pusher = Pusher("p", [_route(policy)], threads=2, subscriber=subscriber, post=post)
    _run(pusher, subscriber, len(answers))
    assert subscriber.settled == {"ack-ok": None, "ack-no-content": None, "ack-broken": 4, "ack-refused": 1,
                                  "ack-last": 0}
    assert {url for url, _, _ in posted} == {"http://127.0.0.1:1/projects/p/topics/top"}
    assert {b["subscription"] for _, b, _ in posted} == {"projects/p/subscriptions/sub"}
    assert all(50 < timeout <= 60 for _, _, timeout in posted)  # the push timeout is what is left of the lease
    retrying = pusher.snapshot()["subscriptions"]["sub"]
    assert (retrying["retrying"], retrying["max_attempt"]) == (2, 3)  # the dead-lettered one waits no more
    pusher.write(tmp_path / "deliveries.json")
    assert read_snapshot(tmp_path / "deliveries.json")["subscriptions"]["sub"]["retrying"] == 2  # type: ignore[index]


def test_no_more_pushes_at_once_than_the_function_has_threads() -> None:
    subscriber = FakeSubscriber([(str(i), 1) for i in range(12)])
    lock = threading.Lock()
    now_and_most = [0, 0]

    def post() -> Any:
        def send(url: str, body: bytes, timeout: float) -> int | None:
            with lock:
                now_and_most[0] += 1
                now_and_most[1] = max(now_and_most)
            time.sleep(0.02)
            with lock:
                now_and_most[0] -= 1
            return 200
        return send

    _run(Pusher("p", [_route()], threads=3, subscriber=subscriber, post=post), subscriber, 12)
    assert len(subscriber.settled) == 12 and set(subscriber.settled.values()) == {None}
    assert now_and_most[1] == 3


def test_the_poster_reuses_connections_retries_one_the_server_closed_and_says_none_without_an_answer() -> None:
    from http.server import BaseHTTPRequestHandler

    from ops.loopback import serve, stop
    from ops.pusher import HttpPoster

    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/slow":
                time.sleep(0.5)
            self.send_response(202 if self.path == "/ok" else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.close_connection = self.path == "/ok" and len(bodies) == 1  # closed while the client keeps it

        def log_message(self, *args: object) -> None:
            pass

    server = serve(Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    post = HttpPoster()
    try:
        assert post(base + "/ok", b"1", 5) == 202
        assert post(base + "/ok", b"2", 5) == 202  # its kept-alive connection was closed: sent again on a new one
        assert post(base + "/fail", b"3", 5) == 500
        assert post(base + "/slow", b"4", 0.1) is None  # timed out
        assert bodies == [b"1", b"2", b"3", b"4"]
    finally:
        post.close()
        stop(server)
    assert post(base + "/ok", b"5", 1) is None  # refused


def test_the_pulls_are_issued_at_evenly_spaced_points_of_the_emulators_cycle() -> None:
    from ops.pusher import EMULATOR_LOOK_SECONDS, PULLS_PER_SUBSCRIPTION

    pusher = Pusher("p", [_route()], threads=1, subscriber=FakeSubscriber([]))
    now = time.monotonic()
    points = sorted((now + pusher._until_slot(slot)) % EMULATOR_LOOK_SECONDS for slot in range(PULLS_PER_SUBSCRIPTION))
    gaps = [b - a for a, b in itertools.pairwise([*points, points[0] + EMULATOR_LOOK_SECONDS])]
    assert all(abs(gap - EMULATOR_LOOK_SECONDS / PULLS_PER_SUBSCRIPTION) < 0.001 for gap in gaps), gaps
    assert all(0 <= pusher._until_slot(slot) < EMULATOR_LOOK_SECONDS for slot in range(PULLS_PER_SUBSCRIPTION))
