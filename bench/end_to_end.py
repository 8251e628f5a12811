"""End to end: webhook sent -> its event committed in Postgres, p50/p99, on the local stack.

Webhooks go out paced (open loop, below saturation) so the figure is the pipeline's
latency, not a queue's. When a row committed is read from Postgres itself: the local
stack's Postgres records commit times (track_commit_timestamp, ops/stack.py), so each
`events` row says when the transaction that made it `processed` committed
(`pg_xact_commit_timestamp(xmin)`), to the microsecond, on the clock the sender stamps
its requests with. A watcher only waits for the rows to be there; its polling takes no
part in the figure. Shown beside the 202 latency of the same requests, with where the
time went: to the edge's envelope (`received_at`), from there to the writer's
transaction (`created_at`: publish, the delivery, the function's dispatch), and
the transaction up to its commit.

Delivery is measured on its own too: a message published to a topic whose subscription
the stack's pusher (ops/pusher.py) delivers to a bare HTTP endpoint in this process, from
the publish's confirmation to the push arriving. The stack no longer uses the emulator's
own push (0.8.x), which sleeps 100 ms whenever a subscription's backlog is empty (PushLoop,
checkIntervalMillis = 100, not configurable): ~50 ms at p50 before a writer saw a message.
The pusher's staggered long-poll pulls see it within ~50/K ms (the emulator's long-poll
looks every 50 ms; K = PULLS_PER_SUBSCRIPTION), as Cloud push has no such sleep.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ops.stack import Stack, free_port
from shared.db import Database
from tests.traffic import load
from tests.traffic.sources import SOURCES, request_for
from tests.traffic.stats import percentile

WAIT_POLL_SECONDS = 0.05  # how often the watcher looks whether every row is there (not part of any figure)
PUSH_TOPIC = "bench-push-probe"


@dataclass(frozen=True)
class EndToEndFigure:
    sent: int
    accepted: int
    committed: int
    p50_ms: float
    p99_ms: float
    accept_p50_ms: float
    accept_p99_ms: float
    to_envelope_p50_ms: float  # sent -> the edge's received_at
    to_writer_p50_ms: float  # received_at -> the writer's transaction began (created_at)
    write_p50_ms: float  # created_at -> committed
    push_p50_ms: float  # delivery alone (the pusher): publish confirmed -> pushed to a bare endpoint
    push_p99_ms: float


@dataclass(frozen=True)
class Commit:
    committed_at: float  # epoch seconds, when the transaction that made the row processed committed
    received_at: float  # the edge's envelope stamp
    created_at: float  # the writer's transaction start


class CommitWatcher:
    """Waits for `events` rows to be processed, then reads when each committed (epoch seconds)."""

    def __init__(self, database_url: str) -> None:
        self.db = Database.for_url(database_url, size=1)
        self._first_id = 0

    def __enter__(self) -> CommitWatcher:
        with self.db.transaction() as cur:
            cur.execute("SHOW track_commit_timestamp")
            if cur.fetchone()[0] != "on":
                raise RuntimeError("Postgres does not record commit times (track_commit_timestamp is off)")
            cur.execute("SELECT coalesce(max(id), 0) FROM events")
            self._first_id = int(cur.fetchone()[0])
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def _processed(self) -> set[str]:
        with self.db.transaction() as cur:
            # Every row since the start, each time: ids are handed out at insert, not at commit.
            cur.execute("SELECT correlation_id FROM events WHERE id > %s AND status = 'processed'", (self._first_id,))
            return {str(row[0]) for row in cur.fetchall()}

    def wait_for(self, correlation_ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not correlation_ids <= self._processed():
            time.sleep(WAIT_POLL_SECONDS)

    def commits(self) -> dict[str, Commit]:
        with self.db.transaction() as cur:
            cur.execute("SELECT correlation_id, extract(epoch FROM pg_xact_commit_timestamp(xmin)), "
                        "extract(epoch FROM received_at), extract(epoch FROM created_at) "
                        "FROM events WHERE id > %s AND status = 'processed'", (self._first_id,))
            return {str(cid): Commit(float(committed), float(received), float(created))
                    for cid, committed, received, created in cur.fetchall()}


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def measure(stack: Stack, tenant: str, count: int = 200, pace_per_second: float = 20.0) -> EndToEndFigure:
    picked = [s for s in SOURCES if s.event_type in ("message_received", "lead_created")]
    requests = [request_for(picked[i % len(picked)].build(100_000 + i, tenant), stack.function_urls, "e2e")
                for i in range(count)]
    assert stack.database_url
    warm = [request_for(picked[i % len(picked)].build(90_000 + i, tenant), stack.function_urls, "warm")
            for i in range(20)]  # every instance imported and connected before the clock runs
    load.run(warm, concurrency=4, max_seconds=60)
    time.sleep(2)
    with CommitWatcher(stack.database_url) as watcher:
        epoch_offset = time.time() - time.monotonic()  # sent_at is monotonic; Postgres stamps the wall clock
        result = load.run(requests, concurrency=4, max_seconds=count / pace_per_second + 30,
                          pace_per_second=pace_per_second)
        accepted = {str(a.body.get("correlation_id")): a for a in result.ok}
        watcher.wait_for(set(accepted), timeout=60)
        commits = watcher.commits()
    done = [(a.sent_at + epoch_offset, commits[cid]) for cid, a in accepted.items() if cid in commits]
    latencies = [c.committed_at - sent for sent, c in done]
    push = push_latencies(stack, count=count // 2, pace_per_second=pace_per_second)
    return EndToEndFigure(
        len(requests), len(accepted), len(latencies), percentile(latencies, 50) * 1000,
        percentile(latencies, 99) * 1000, result.latency(50) * 1000, result.latency(99) * 1000,
        _median_ms([c.received_at - sent for sent, c in done]),
        _median_ms([c.created_at - c.received_at for _, c in done]),
        _median_ms([c.committed_at - c.created_at for _, c in done]),
        percentile(push, 50) * 1000, percentile(push, 99) * 1000)


@contextmanager
def _endpoint() -> Iterator[tuple[str, dict[str, float]]]:
    """A bare push endpoint in this process: (its URL, message data -> when it arrived)."""
    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrived.setdefault(base64.b64decode(body["message"]["data"]).decode(), time.monotonic())
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, name="push-endpoint", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/push", arrived
    finally:
        server.shutdown()
        server.server_close()


def push_latencies(stack: Stack, count: int = 100, pace_per_second: float = 20.0) -> list[float]:
    """Seconds from a publish's confirmation to its push reaching a bare endpoint, paced like the webhooks.

    Delivered as the stack delivers: a subscription made by ops.provision's rules, pushed by a Pusher.
    """
    from google.cloud import pubsub_v1

    from bench.stacks import create_topics
    from ops.provision import DeliveryPolicy, Route, subscription_request
    from ops.pusher import Pusher
    from shared.publisher import PubSubPublisher

    create_topics(stack.project, [PUSH_TOPIC, f"{PUSH_TOPIC}-dlq"])
    publisher = PubSubPublisher(stack.project, timeout_seconds=30)  # the edge's client and batch settings
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(stack.project, f"{PUSH_TOPIC}-sub")
    try:
        with _endpoint() as (url, arrived):
            route = Route(f"{PUSH_TOPIC}-sub", PUSH_TOPIC, f"{PUSH_TOPIC}-dlq", "probe", url,
                          DeliveryPolicy.from_env())
            subscriber.create_subscription(request=subscription_request(stack.project, route))
            pusher = Pusher(stack.project, [route], threads=int(os.environ.get("THREADS", "8")))
            pusher.start()
            try:
                confirmed: dict[str, float] = {}
                start = time.monotonic()
                for i in range(count):
                    time.sleep(max(0.0, start + i / pace_per_second - time.monotonic()))
                    publisher.publish_raw(PUSH_TOPIC, str(i).encode(), {})
                    confirmed[str(i)] = time.monotonic()
                deadline = time.monotonic() + 30
                while len(arrived) < count and time.monotonic() < deadline:
                    time.sleep(WAIT_POLL_SECONDS)
            finally:
                pusher.stop()
            subscriber.delete_subscription(subscription=subscription)
            return [arrived[key] - at for key, at in confirmed.items() if key in arrived]
    finally:
        subscriber.close()
