"""Redrive: messages/s moved out of a dead-letter subscription, against raw publish.

The dead letters are message_received envelopes with the attributes the edge publishes them
with (ids, type, tenant), as a writer's dead letters are. Two movers, real clients against the
emulator: `ops.deadletters.redrive` (what `ctower dlq redrive` runs: pulls filtered, each
chunk of PUBLISH_BATCH one Publish request with the next pull and the previous chunk's
confirmation under way, confirmed ones acknowledged in the background) on the
message_received dead-letter ops subscription, and a bare batched pull -> publish -> ack loop
(a pull of 100 published as one request, then one ack, one step after the other) — what the
same clients do without filters, audit notes, per-message outcomes or pipelining.
`ctower events replay` (failed events republished from the ledger of a Postgres of its own)
is measured against the same floor.

The floor is the fastest way the official client publishes the same messages: whole Publish
requests of 1,000 (Pub/Sub's maximum) through its generated API, as `ops.publish_requests`
sends them; no pull, no ack. The movers publish the same way, so a ratio is what moving costs
over publishing. The client's batching layer (`PubSubPublisher`, a future per message, ~70 us
of Python each) is shown too, as a mover: it was the floor until the movers stopped using it.
Each figure also says the CPU per message of this process and of the emulator's.

Each runs ROUNDS times, interleaved (floor, the movers, then again), and each figure is its
median: one pass takes a few tenths of a second, so a single one is at the mercy of a
neighbour's burst, and the emulator's JIT warms up as it goes (a floor measured once, first,
would be its slowest).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ops.publish_requests import MAX_MESSAGES_PER_REQUEST, RequestPublisher
from ops.stack import Stack
from shared.publisher import PubSubPublisher

DEAD = "bench-dead"
DEAD_SUB = "bench-dead-ops"
TARGET = "bench-redriven"
BATCH = 100
COUNT = 5000  # messages per pass: at raw publish speed a pass of 1,000 was over in a few hundredths of a second
ROUNDS = 5

Bodies = list[tuple[bytes, dict[str, str]]]
Move = Callable[[], int]  # moves the round's messages; answers how many


@dataclass(frozen=True)
class Mover:
    name: str
    move: Move
    fill: Callable[[], None] | None = None  # what to put in place before the clock starts


@dataclass(frozen=True)
class RedriveFigure:
    name: str
    per_second: float
    moved: int  # per round
    rounds: int = 1
    own_cpu_us: float = 0.0  # CPU per message moved: this process (all its threads), median of the rounds
    emulator_cpu_us: float = 0.0  # and the emulator's (its process tree)


def _publish_requests(publisher: RequestPublisher, topic: str, bodies: Bodies,
                      per_request: int = MAX_MESSAGES_PER_REQUEST) -> None:
    """The floor: `per_request` messages in each Publish request, every one confirmed."""
    for start in range(0, len(bodies), per_request):
        chunk = bodies[start:start + per_request]
        results = publisher.publish_raw_batch([(topic, data, attrs) for data, attrs in chunk])
        failed = [r for r in results if not isinstance(r, str)]
        if failed:
            raise RuntimeError(f"publish to {topic}: {len(failed)} not confirmed: {failed[0]}")


def _publish_batched(publisher: PubSubPublisher, topic: str, bodies: Bodies) -> None:
    """Through the client's batching layer: a future per message, batches of 100 awaited in turn."""
    path = f"projects/{publisher.project_id}/topics/{topic}"
    for start in range(0, len(bodies), BATCH):
        futures = [publisher.client.publish(path, data, **attrs) for data, attrs in bodies[start:start + BATCH]]
        for future in futures:
            future.result(timeout=publisher.timeout_seconds)


def _dead_letters(count: int) -> Bodies:
    """message_received envelopes as the edge publishes them (body and attributes), dead-lettered after 5 attempts."""
    from shared.envelope import build_envelope
    from shared.payloads import MessageReceived

    letters: Bodies = []
    for i in range(count):
        envelope = build_envelope(event_type="message_received", tenant="default", source="bench",
                                  correlation_id=f"dead-{i}", source_id=f"dead-{i}",
                                  payload=MessageReceived(provider="evolution", provider_message_id=f"wamid-{i}",
                                                          phone=f"55419{i:08d}", chat_id=f"55419{i:08d}@s.whatsapp.net",
                                                          text="Oi, quero um orçamento " * 8))
        attributes = {**envelope.attributes(), "CloudPubSubDeadLetterSourceDeliveryCount": "5"}
        letters.append((envelope.to_bytes(), attributes))
    return letters


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU of these processes so far (their threads included)."""
    total = 0.0
    for proc in processes:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def _timed(count: int, max_seconds: float, what: str, move: Move,
           emulator: list[psutil.Process]) -> tuple[float, float, float]:
    """One move of `count` messages: (messages per second, our CPU us and the emulator's per message).

    It must move them all in time."""
    own = [psutil.Process()]
    own_before, emulator_before = _cpu_seconds(own), _cpu_seconds(emulator)
    start = time.monotonic()
    moved = move()
    elapsed = time.monotonic() - start
    own_cpu, emulator_cpu = _cpu_seconds(own) - own_before, _cpu_seconds(emulator) - emulator_before
    if moved != count or elapsed > max_seconds:
        raise RuntimeError(f"{what}: moved {moved} of {count} in {elapsed:.1f} s")
    return count / elapsed, own_cpu * 1e6 / count, emulator_cpu * 1e6 / count


def _subscribe(subscriber: Any, project: str, subscription: str, topic: str) -> None:
    subscriber.create_subscription(request={"name": f"projects/{project}/subscriptions/{subscription}",
                                            "topic": f"projects/{project}/topics/{topic}",
                                            "ack_deadline_seconds": 60})


def _ops_redrive(stack: Stack, subscriber: Any, publisher: RequestPublisher, bodies: Bodies) -> Mover:
    """Fill the message_received dead-letter ops subscription; the move is `ops.deadletters.redrive` on it."""
    from bench.stacks import create_topics
    from ops.deadletters import RedriveOptions, Subscription, redrive

    et = stack.topology.event_type("message_received")
    create_topics(stack.project, [et.dead_letter_topic])
    _subscribe(subscriber, stack.project, et.dead_letter_subscription, et.dead_letter_topic)
    source = next(iter(et.subscriptions))
    letters = [(data, {**attrs, "CloudPubSubDeadLetterSourceSubscription": source}) for data, attrs in bodies]

    def fill() -> None:
        _publish_requests(publisher, et.dead_letter_topic, letters)

    def move() -> int:
        report = redrive([(et, Subscription(subscriber, stack.project, et.dead_letter_subscription, emulator=True))],
                         publisher, stack.topology, RedriveOptions(limit=len(bodies)))
        if report.failed:
            raise RuntimeError(f"ops redrive: {report.counts()}")
        return report.moved

    return Mover("ops.deadletters.redrive (ctower dlq redrive)", move, fill)


def _bare_loop(stack: Stack, subscriber: Any, publisher: RequestPublisher, bodies: Bodies,
               max_seconds: float) -> Mover:
    """Pull 100, publish them in one request, ack them; again until all moved."""
    _subscribe(subscriber, stack.project, DEAD_SUB, DEAD)
    dead_sub = subscriber.subscription_path(stack.project, DEAD_SUB)

    def move() -> int:
        moved = 0
        deadline = time.monotonic() + max_seconds
        while moved < len(bodies) and time.monotonic() < deadline:
            pulled = subscriber.pull(subscription=dead_sub, max_messages=BATCH, timeout=10).received_messages
            if not pulled:
                continue
            _publish_requests(publisher, TARGET, [(m.message.data, dict(m.message.attributes)) for m in pulled])
            subscriber.acknowledge(subscription=dead_sub, ack_ids=[m.ack_id for m in pulled])
            moved += len(pulled)
        return moved

    return Mover("batched loop: pull -> publish -> ack", move, lambda: _publish_requests(publisher, DEAD, bodies))


def _replay_ledger(stack: Stack, workdir: Path, count: int) -> tuple[Mover, Callable[[], None]]:
    """`count` failed lead_created events in a Postgres of its own; the move is `ops.replay.replay` of them.

    Nothing consumes the topic here, so they stay failed and every round replays the same ones.
    Returns (move, cleanup).
    """
    from bench.stacks import create_topics
    from ops.localdb import migrated_embedded
    from ops.replay import replay
    from shared.db import Database
    from shared.envelope import build_envelope
    from shared.payloads import PAYLOAD_MODELS

    resources = ExitStack()
    _, url = resources.enter_context(migrated_embedded(workdir / "pg-replay", "bench_replay"))
    db = Database.for_url(url, size=1)
    resources.callback(db.close)
    cleanup = resources.close

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
    except BaseException:
        cleanup()
        raise
    publisher = PubSubPublisher(stack.project, timeout_seconds=30)
    event_ids = [e.event_id for e in envelopes]

    def move() -> int:
        report = replay(db, publisher, event_ids)
        if report.failed:
            raise RuntimeError(f"ops replay: {report.counts()}")
        return report.moved

    return Mover("ops.replay.replay (ctower events replay)", move), cleanup


def measure(stack: Stack, workdir: Path, count: int = COUNT, max_seconds: float = 60.0,
            rounds: int = ROUNDS) -> list[RedriveFigure]:
    """Floor, ops redrive, bare loop, replay and the client's batching layer, `rounds` times interleaved; the
    median of each."""
    from google.cloud import pubsub_v1

    from bench.stacks import create_topics

    create_topics(stack.project, [DEAD, TARGET])
    subscriber = pubsub_v1.SubscriberClient()
    client = PubSubPublisher(stack.project, timeout_seconds=30)
    publisher = RequestPublisher(client)
    bodies = _dead_letters(count)
    replay, replay_cleanup = _replay_ledger(stack, workdir, count)
    try:
        def floor() -> int:
            _publish_requests(publisher, TARGET, bodies)
            return count

        def batching_layer() -> int:
            _publish_batched(client, TARGET, bodies)
            return count

        movers = [Mover(f"floor: raw publish ({MAX_MESSAGES_PER_REQUEST} per Publish request)", floor),
                  _ops_redrive(stack, subscriber, publisher, bodies),
                  _bare_loop(stack, subscriber, publisher, bodies, max_seconds), replay,
                  Mover("the client's batching layer (batches of 100, a future per message)", batching_layer)]
        emulator_root = psutil.Process(stack.processes["pubsub-emulator"].pid)
        emulator = [emulator_root, *emulator_root.children(recursive=True)]
        rounds_of: dict[str, list[tuple[float, float, float]]] = {m.name: [] for m in movers}
        for _ in range(rounds):
            for mover in movers:
                if mover.fill is not None:
                    mover.fill()
                rounds_of[mover.name].append(_timed(count, max_seconds, mover.name, mover.move, emulator))
        figures = []
        for m in movers:
            rate, own_cpu, emulator_cpu = (statistics.median(column) for column in zip(*rounds_of[m.name], strict=True))
            figures.append(RedriveFigure(m.name, rate, count, rounds, own_cpu, emulator_cpu))
        return figures
    finally:
        subscriber.close()
        replay_cleanup()


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.redrive`: this bench alone, on an emulator of its own; prints each mover against the floor."""
    import sys
    import tempfile

    from bench import cli, stacks

    cli.stop_cleanly_on_sigterm()
    parser = cli.parser(__doc__, count=COUNT, rounds=ROUNDS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ct-redrive-") as tmp:
        workdir = Path(tmp)
        with (workdir / "services.log").open("w", encoding="utf-8") as log, \
                stacks.emulator(workdir / "emulator", log) as stack:
            figures = measure(stack, workdir, count=args.count, rounds=args.rounds)
    floor = figures[0]
    for figure in figures:
        print(f"{figure.name:<50} {figure.per_second:8.0f} msg/s  {figure.per_second / floor.per_second:5.2f}  "
              f"CPU per message: ours {figure.own_cpu_us:4.0f} us, emulator {figure.emulator_cpu_us:4.0f} us",
              file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
