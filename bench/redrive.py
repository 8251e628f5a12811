"""Redrive: messages/s moved out of a dead-letter subscription, against raw publish.

Two movers, real clients against the emulator: `ops.deadletters.redrive` (what `ctower dlq
redrive` runs: each pull of up to 100 filtered, published together, every confirmation
awaited, then the confirmed ones acknowledged in one request) on the message_received
dead-letter ops subscription, and a bare batched pull -> publish -> ack loop (a batch of 100
published, confirmations awaited together, then one ack) — what the same clients can do
without filters, audit notes or per-message outcomes. The floor publishes the same messages
in batches of 100, no pull, no ack. `ctower events replay` (failed events republished from the
ledger of a Postgres of its own) is measured against the same floor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ops.stack import Stack
from shared.publisher import PubSubPublisher

DEAD = "bench-dead"
DEAD_SUB = "bench-dead-ops"
TARGET = "bench-redriven"
BATCH = 100


@dataclass(frozen=True)
class RedriveFigure:
    name: str
    per_second: float
    moved: int


def _publish_batched(publisher: PubSubPublisher, topic: str, bodies: list[tuple[bytes, dict[str, str]]]) -> None:
    path = f"projects/{publisher.project_id}/topics/{topic}"
    for start in range(0, len(bodies), BATCH):
        futures = [publisher.client.publish(path, data, **attrs) for data, attrs in bodies[start:start + BATCH]]
        for future in futures:
            future.result(timeout=publisher.timeout_seconds)


def _ops_redrive(stack: Stack, subscriber: object, publisher: PubSubPublisher,
                 bodies: list[tuple[bytes, dict[str, str]]], max_seconds: float) -> RedriveFigure:
    from bench.stacks import create_topics
    from ops.deadletters import RedriveOptions, Subscription, redrive

    et = stack.topology.event_type("message_received")
    create_topics(stack.project, [et.dead_letter_topic])
    path = f"projects/{stack.project}/subscriptions/{et.dead_letter_subscription}"
    subscriber.create_subscription(request={"name": path,  # type: ignore[attr-defined]
                                            "topic": f"projects/{stack.project}/topics/{et.dead_letter_topic}",
                                            "ack_deadline_seconds": 60})
    source = next(iter(et.subscriptions))
    _publish_batched(publisher, et.dead_letter_topic,
                     [(data, {**attrs, "CloudPubSubDeadLetterSourceSubscription": source}) for data, attrs in bodies])
    start = time.monotonic()
    report = redrive([(et, Subscription(subscriber, stack.project, et.dead_letter_subscription, emulator=True))],
                     publisher, stack.topology, RedriveOptions(limit=len(bodies)))
    elapsed = time.monotonic() - start
    if elapsed > max_seconds or report.failed:
        raise RuntimeError(f"ops redrive: {report.counts()} in {elapsed:.0f} s")
    return RedriveFigure("ops.deadletters.redrive (ctower dlq redrive)", report.moved / elapsed, report.moved)


def _ops_replay(stack: Stack, publisher: PubSubPublisher, workdir: Path, count: int,
                max_seconds: float) -> RedriveFigure:
    """`ctower events replay`: failed events republished from the ledger (a real Postgres of its own)."""
    from bench.stacks import create_topics
    from ops.localdb import migrated_embedded
    from ops.replay import replay
    from shared.db import Database
    from shared.envelope import build_envelope
    from shared.payloads import PAYLOAD_MODELS

    with migrated_embedded(workdir / "pg-replay", "bench_replay") as (_, url):
        db = Database.for_url(url, size=1)
        try:
            create_topics(stack.project, [stack.topology.event_type("lead_created").topic])
            model = PAYLOAD_MODELS["lead_created"]
            envelopes = [build_envelope(event_type="lead_created", tenant="default", source="bench",
                                        correlation_id=f"replay-{i}", source_id=f"replay-{i}",
                                        payload=model.model_validate({"name": f"Lead {i}", "phone": f"55419{i:08d}",
                                                                      "source": "site", "funnel": "end_client"}))
                         for i in range(count)]
            with db.transaction() as cur:
                for e in envelopes:
                    cur.execute("INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, status, "
                                "last_error, envelope, occurred_at, received_at) "
                                "VALUES (%s, %s, %s, %s, %s, 'failed', 'bench', %s::jsonb, %s, %s)",
                                (e.event_id, e.event_type, e.tenant, e.source, e.correlation_id,
                                 e.to_bytes().decode(), e.occurred_at, e.received_at))
            start = time.monotonic()
            report = replay(db, publisher, [e.event_id for e in envelopes])
            elapsed = time.monotonic() - start
        finally:
            db.close()
    if elapsed > max_seconds or report.failed or report.moved != count:
        raise RuntimeError(f"ops replay: {report.counts()} in {elapsed:.0f} s")
    return RedriveFigure("ops.replay.replay (ctower events replay)", report.moved / elapsed, report.moved)


def measure(stack: Stack, workdir: Path, count: int = 1000, max_seconds: float = 60.0) -> list[RedriveFigure]:
    from google.cloud import pubsub_v1

    from bench.stacks import create_topics

    create_topics(stack.project, [DEAD, TARGET])
    subscriber = pubsub_v1.SubscriberClient()
    publisher = PubSubPublisher(stack.project, timeout_seconds=30)
    try:
        dead_sub = subscriber.subscription_path(stack.project, DEAD_SUB)
        subscriber.create_subscription(request={"name": dead_sub, "topic": f"projects/{stack.project}/topics/{DEAD}",
                                                "ack_deadline_seconds": 60})
        bodies = [(b'{"not":"an envelope","n":%d}' % i + b" " * 600,
                   {"event_type": "message_received", "event_id": f"e-{i}",
                    "CloudPubSubDeadLetterSourceDeliveryCount": "5"}) for i in range(count)]
        start = time.monotonic()
        _publish_batched(publisher, TARGET, bodies)
        raw = RedriveFigure("floor: raw publish (batches of 100)", count / (time.monotonic() - start), count)
        _publish_batched(publisher, DEAD, bodies)  # the dead letters to move
        moved = 0
        start = time.monotonic()
        deadline = start + max_seconds
        while moved < count and time.monotonic() < deadline:
            pulled = subscriber.pull(subscription=dead_sub, max_messages=BATCH, timeout=10).received_messages
            if not pulled:
                continue
            _publish_batched(publisher, TARGET, [(m.message.data, dict(m.message.attributes)) for m in pulled])
            subscriber.acknowledge(subscription=dead_sub, ack_ids=[m.ack_id for m in pulled])
            moved += len(pulled)
        loop = RedriveFigure("batched loop: pull -> publish -> ack", moved / (time.monotonic() - start), moved)
        return [raw, _ops_redrive(stack, subscriber, publisher, bodies, max_seconds), loop,
                _ops_replay(stack, publisher, workdir, count, max_seconds)]
    finally:
        subscriber.close()
