"""The local pusher on the real emulator: prompt delivery, Cloud push's backoff, dead letters.

Each test has a project of its own on the session stack's emulator: its topic, dead-letter
topic and pull subscription (made by ops.provision's rules), and a bare HTTP endpoint in
this process that answers as told and records every push it gets.
"""

from __future__ import annotations

import base64
import itertools
import json
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from google.cloud import pubsub_v1

from ops.loopback import serve, stop
from ops.provision import DeliveryPolicy, Route, subscription_request
from ops.pusher import Pusher, backoff_seconds
from ops.stack import free_port
from tests.conftest import RunningStack, wait_for

pytestmark = pytest.mark.integration

FAST = DeliveryPolicy(max_delivery_attempts=5, min_backoff_seconds=1, max_backoff_seconds=2, ack_deadline_seconds=10)


@dataclass
class Endpoint:
    """Pushes received: (message data, deliveryAttempt, when), answered with `status`."""

    status: int = 204
    pushes: list[tuple[str, int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempts(self, data: str) -> list[tuple[int, float]]:
        with self.lock:
            return [(attempt, at) for d, attempt, at in self.pushes if d == data]


@dataclass
class Project:
    name: str
    publisher: Any
    subscriber: Any
    endpoint: Endpoint
    url: str

    def route(self, suffix: str, url: str | None = None) -> Route:
        topic = f"top-{suffix}"
        for name in (topic, f"{topic}-dlq"):
            self.publisher.create_topic(name=self.publisher.topic_path(self.name, name))
        self.subscriber.create_subscription(request={
            "name": self.subscriber.subscription_path(self.name, f"{topic}-dlq-ops"),
            "topic": self.publisher.topic_path(self.name, f"{topic}-dlq")})
        route = Route(f"{topic}-sub", topic, f"{topic}-dlq", "probe", url or self.url, FAST)
        self.subscriber.create_subscription(request=subscription_request(self.name, route))
        return route

    def publish(self, route: Route, data: str) -> float:
        self.publisher.publish(self.publisher.topic_path(self.name, route.topic), data.encode()).result(timeout=30)
        return time.monotonic()

    def dead_letters(self, route: Route, count: int) -> list[Any]:
        path = self.subscriber.subscription_path(self.name, f"{route.topic}-dlq-ops")
        found: list[Any] = []

        def enough() -> bool:
            pulled = self.subscriber.pull(request={"subscription": path, "max_messages": 100,
                                                   "return_immediately": True}, timeout=10).received_messages
            if pulled:
                self.subscriber.acknowledge(subscription=path, ack_ids=[m.ack_id for m in pulled])
            found.extend(pulled)
            return len(found) >= count

        wait_for(enough, timeout=60, interval=0.5)
        return found


@pytest.fixture
def project(stack: RunningStack) -> Iterator[Project]:
    endpoint = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with endpoint.lock:
                endpoint.pushes.append((base64.b64decode(body["message"]["data"]).decode(), body["deliveryAttempt"],
                                        time.monotonic()))
            self.send_response(endpoint.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = serve(Handler)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    try:
        yield Project(f"ct-pusher-{uuid.uuid4().hex[:6]}", publisher, subscriber, endpoint,
                      f"http://127.0.0.1:{server.server_address[1]}/projects/p/topics/top")
    finally:
        subscriber.close()
        stop(server)


def test_a_message_is_pushed_promptly_not_after_the_emulators_idle_sleep(project: Project) -> None:
    """Paced like webhooks; the emulator's own push waited ~50 ms at p50 (its 100 ms idle sleep)."""
    route = project.route("prompt")
    pusher = Pusher(project.name, [route], threads=4)
    pusher.start()
    try:
        published = {}
        for i in range(20):
            time.sleep(0.1)
            published[str(i)] = project.publish(route, str(i))
        wait_for(lambda: len(project.endpoint.pushes) >= 20, timeout=30)
    finally:
        pusher.stop()
    latencies = [project.endpoint.attempts(data)[0][1] - at for data, at in published.items()]
    assert statistics.median(latencies) < 0.04, sorted(latencies)
    assert {attempt for _, attempt, _ in project.endpoint.pushes} == {1}  # each acknowledged on its 204, once


def test_a_failing_endpoint_is_retried_with_backoff_and_dead_lettered_after_the_last_attempt(
        project: Project) -> None:
    project.endpoint.status = 500
    route = project.route("failing")
    pusher = Pusher(project.name, [route], threads=4)
    pusher.start()
    try:
        project.publish(route, "doomed")
        [letter] = project.dead_letters(route, 1)
        retrying = pusher.snapshot()["subscriptions"]
    finally:
        pusher.stop()
    attempts = project.endpoint.attempts("doomed")
    assert [a for a, _ in attempts] == [1, 2, 3, 4, 5]
    for (attempt, at), (_, next_at) in itertools.pairwise(attempts):
        wait = backoff_seconds(FAST, attempt)
        assert wait - 0.1 <= next_at - at <= wait + 1.5, attempts  # Cloud push's backoff, not the emulator's
    assert letter.message.data == b"doomed"
    assert letter.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert retrying == {}  # dead-lettered: nothing waits for a retry any more


def test_many_failing_at_once_are_all_dead_lettered_and_a_refused_connection_is_a_failure(
        project: Project) -> None:
    """The case the emulator's push stalled on: several failed pushes at once never came back."""
    project.endpoint.status = 503
    failing = project.route("many")
    refused = project.route("refused", url=f"http://127.0.0.1:{free_port()}/projects/p/topics/top")
    pusher = Pusher(project.name, [failing, refused], threads=4)
    pusher.start()
    try:
        for i in range(12):
            project.publish(failing, f"m{i}")
        project.publish(refused, "nobody listens")
        waiting = wait_for(lambda: pusher.snapshot()["subscriptions"].get(refused.subscription), timeout=10)
        letters = project.dead_letters(failing, 12)
        [refused_letter] = project.dead_letters(refused, 1)
    finally:
        pusher.stop()
    assert sorted(m.message.data.decode() for m in letters) == sorted(f"m{i}" for i in range(12))
    assert {m.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] for m in letters} == {"5"}
    for i in range(12):
        assert [a for a, _ in project.endpoint.attempts(f"m{i}")] == [1, 2, 3, 4, 5]
    assert refused_letter.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert (waiting["retrying"], waiting["last_answer"]) == (1, "no answer")
