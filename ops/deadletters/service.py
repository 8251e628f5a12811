"""Depth, peek, redrive and purge over dead-letter subscriptions, never losing a message.

A message is acknowledged on the dead-letter subscription only after its republish is
confirmed (redrive) or when an operator confirmed its purge; everything else is
released as it was found.

A redrive is batched and pipelined: a pull's chosen messages are published together
while the next pulls are under way and the previous chunk's confirmations come in; once a
chunk's confirmations are all in, exactly the confirmed ones are acknowledged (in the
background, gathered into requests of up to 1,000 within half a second); a failed one is
nacked and reported. Messages waiting for their chunk (under `--rate`, or behind slow
confirmations) have their lease renewed before it could run out.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ops.audit import RunReport
from ops.deadletters.model import (
    DEFAULT_MAX_REDRIVES,
    DEFAULT_MAX_SCAN,
    DeadLetter,
    Filter,
    original_topic,
    republish_attributes,
)
from ops.deadletters.pubsub import ASSUMED_ACK_DEADLINE, MAX_ACK_DEADLINE, PULLS_IN_FLIGHT, Pass, Subscription
from shared.publisher import PublishError, RawMessage
from shared.topology import EventType, Topology

PUBLISH_BATCH = 100  # messages a redrive publishes together (one Publish request; a pull on the emulator gives 100)
PUBLISHES_IN_FLIGHT = 2  # chunks awaiting confirmation at once: one is published while another's confirmations come
PACED_CHUNK_SECONDS = 0.1  # under --rate, publish this many seconds' worth at a time
LEASE_SLACK_SECONDS = 10.0  # renew a lease while at least a publish timeout plus this is left


class RawPublisher(Protocol):
    """The port a redrive publishes through (ops.publish_requests.RequestPublisher in production).

    `publish_raw_batch` publishes every (topic, data, attributes) at once and waits for each
    confirmation, all within `timeout_seconds`; it answers, in order, each message id or the
    PublishError of that message, and raises for none of them.
    """

    timeout_seconds: float

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]: ...


# -- reading -----------------------------------------------------------------
@dataclass(frozen=True)
class Depth:
    event_type: str
    subscription: str
    depth: int
    oldest_age_seconds: float | None
    capped: bool  # the scan stopped at max_scan: there are at least `depth`

    def as_dict(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "subscription": self.subscription, "depth": self.depth,
                "depth_at_least": self.capped, "oldest_age_seconds": self.oldest_age_seconds}


def depth(subscription: Subscription, event_type: str, max_scan: int = DEFAULT_MAX_SCAN) -> Depth:
    oldest: datetime | None = None
    with Pass(subscription, max_scan) as walk:
        for batch in walk.batches():
            for letter in batch:
                if letter.published_at and (oldest is None or letter.published_at < oldest):
                    oldest = letter.published_at
        count = walk.seen
    age = None if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
    return Depth(event_type, subscription.name, count, age, capped=count >= max_scan)


def peek(subscription: Subscription, selection: Filter, limit: int | None = None,
         max_scan: int = DEFAULT_MAX_SCAN) -> list[DeadLetter]:
    """The matching messages, oldest first; all of them are released untouched."""
    now = datetime.now(UTC)
    found: list[DeadLetter] = []
    with Pass(subscription, max_scan) as walk:
        for batch in walk.batches():
            found += [m for m in batch if selection.matches(m, now)]
    found.sort(key=lambda m: m.published_at or now)
    return found[:limit] if limit is not None else found


# -- moving and dropping --------------------------------------------------------
@dataclass
class RedriveOptions:
    selection: Filter = field(default_factory=Filter)
    limit: int | None = None
    dry_run: bool = False
    rate: float | None = None  # messages per second
    max_redrives: int = DEFAULT_MAX_REDRIVES
    stop_on_error: bool = True
    max_scan: int = DEFAULT_MAX_SCAN
    run_id: int | None = None


Progress = Callable[[RunReport], None]


class _Pacer:
    """At most `rate` publishes per second over the run; a chunk of n takes n slots."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self, count: int = 1) -> None:
        if self.interval:
            delay = self.next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.next_at = max(self.next_at, time.monotonic()) + count * self.interval


def publish_chunk_size(rate: float | None) -> int:
    """Messages published together: PUBLISH_BATCH, or with a rate PACED_CHUNK_SECONDS' worth (at least 1)."""
    if not rate:
        return PUBLISH_BATCH
    return max(1, min(PUBLISH_BATCH, int(rate * PACED_CHUNK_SECONDS)))


def lease_seconds(publish_timeout: float) -> tuple[float, int]:
    """(renew when less than this is left, renew to this): a publish waits at most `publish_timeout`."""
    margin = publish_timeout + LEASE_SLACK_SECONDS
    return margin, int(min(MAX_ACK_DEADLINE, max(ASSUMED_ACK_DEADLINE, 2 * margin)))


Chunk = list[tuple[DeadLetter, str]]  # messages to publish, each with its original topic


@dataclass
class _Run:
    """What one redrive call carries from batch to batch, and the chunks published but not yet settled."""

    publisher: RawPublisher
    topology: Topology
    options: RedriveOptions
    report: RunReport
    progress: Progress | None
    pacer: _Pacer
    chunk_size: int
    renew_margin: float
    renew_to: int
    window: int
    publishing: ThreadPoolExecutor
    in_flight: deque[tuple[Chunk, Future[list[str | PublishError]]]] = field(default_factory=deque)

    def step(self) -> None:
        if self.progress is not None:
            self.progress(self.report)

    def done(self, pending: int = 0) -> bool:
        """Stopped on an error, or the limit reached counting what is in flight and `pending` more."""
        report, options = self.report, self.options
        if options.dry_run:
            attempted = report.would_move
        else:
            attempted = report.moved + report.failed + pending + sum(len(chunk) for chunk, _ in self.in_flight)
        return report.stopped_early or (options.limit is not None and attempted >= options.limit)


def redrive(subscriptions: list[tuple[EventType, Subscription]], publisher: RawPublisher, topology: Topology,
            options: RedriveOptions, report: RunReport | None = None, progress: Progress | None = None) -> RunReport:
    """Move matching dead letters back to their original topics; ack each only once its publish is confirmed.

    Batched and pipelined: each pull (up to PULL_BATCH; the next ones are under way meanwhile) is
    filtered, its chosen messages published PUBLISH_BATCH at a time (smaller chunks under
    `rate`), with up to PUBLISHES_IN_FLIGHT chunks awaiting confirmation at once (one under
    `rate`); when a chunk's confirmations are all in, exactly the confirmed ones are
    acknowledged in the background (Pass.settle). A message whose publish failed is nacked
    (it stays) and reported; the run then publishes nothing more (the chunks already in
    flight are settled the same way) unless `stop_on_error` is off. A message already
    redriven `max_redrives` times is left in place and reported. A dry run counts and releases
    everything. What is pulled and not settled (filtered out, not reached) is released when
    the subscription's pass ends.
    """
    report = report if report is not None else RunReport()
    margin, renew_to = lease_seconds(publisher.timeout_seconds)
    window = 1 if options.rate else PUBLISHES_IN_FLIGHT
    now = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=window, thread_name_prefix="dlq-publish") as publishing:
        run = _Run(publisher, topology, options, report, progress, _Pacer(options.rate),
                   publish_chunk_size(options.rate), margin, renew_to, window, publishing)
        for dlq_type, subscription in subscriptions:
            if run.done():
                break
            # Under a rate, pulling further ahead would only hold messages whose lease nobody renews.
            with Pass(subscription, options.max_scan, pulls_in_flight=1 if options.rate else PULLS_IN_FLIGHT) as walk:
                try:
                    for batch in walk.batches():
                        chosen = _choose(run, dlq_type, batch, now)
                        for start in range(0, len(chosen), run.chunk_size):
                            _publish_chunk(run, walk, chosen[start:start + run.chunk_size], chosen[start:])
                            if report.stopped_early:
                                break
                        if run.done():
                            break
                finally:
                    while run.in_flight:
                        _settle_chunk(run, walk)
    return report


def _choose(run: _Run, dlq_type: EventType, batch: list[DeadLetter], now: datetime) -> Chunk:
    """The batch's messages to publish, with their topics; skipped ones and a dry run's are reported here."""
    options, report = run.options, run.report
    chosen: Chunk = []
    for letter in batch:
        if run.done(len(chosen)):
            break
        if not options.selection.matches(letter, now):
            continue
        topic = original_topic(run.topology, dlq_type, letter)
        ids = {"event_id": letter.event_id, "correlation_id": letter.correlation_id}
        if letter.redrive_count >= options.max_redrives:
            report.matched += 1
            report.skipped += 1
            report.note("skipped", **ids, subscription=letter.subscription,
                        reason=f"redriven {letter.redrive_count} times (max {options.max_redrives}); left in place")
            run.step()
        elif options.dry_run:
            report.matched += 1
            report.would_move += 1
            report.note("would_move", **ids, subscription=letter.subscription, topic=topic)
            run.step()
        else:
            chosen.append((letter, topic))
    return chosen


def _publish_chunk(run: _Run, walk: Pass, chunk: Chunk, unpublished: Chunk) -> None:
    """Publish a chunk in the background once fewer than `window` chunks await confirmation.

    The oldest chunks in flight are settled first (which may stop the run on a failed
    publish). Before publishing, the lease of the batch's unpublished messages is renewed
    if it could run out while this chunk's confirmations are awaited (slow publishes, a
    low rate).
    """
    while len(run.in_flight) >= run.window:
        _settle_chunk(run, walk)
    if run.report.stopped_early:
        return
    run.pacer.wait(len(chunk))
    waiting = [letter for letter, _ in unpublished]
    if walk.lease_left(waiting) < run.renew_margin:
        walk.lease(waiting, run.renew_to)
    messages = [(topic, letter.data, republish_attributes(letter, run.options.run_id)) for letter, topic in chunk]
    run.in_flight.append((chunk, run.publishing.submit(run.publisher.publish_raw_batch, messages)))


def _settle_chunk(run: _Run, walk: Pass) -> None:
    """The oldest chunk in flight: wait for every confirmation, ack the confirmed ones, nack the failed ones."""
    options, report = run.options, run.report
    chunk, publishing = run.in_flight.popleft()
    results = publishing.result()
    if len(results) != len(chunk):  # a broken port: settle nothing, the messages stay
        raise RuntimeError(f"publisher answered {len(results)} results for {len(chunk)} messages")
    walk.settle([letter for (letter, _), result in zip(chunk, results, strict=True)
                 if not isinstance(result, PublishError)])
    walk.put_back([letter for (letter, _), result in zip(chunk, results, strict=True)
                   if isinstance(result, PublishError)])
    for (letter, topic), result in zip(chunk, results, strict=True):
        ids = {"event_id": letter.event_id, "correlation_id": letter.correlation_id}
        report.matched += 1
        if isinstance(result, PublishError):
            report.failed += 1
            report.errors.append(f"{letter.event_id}: {result}")
            report.note("failed", **ids, subscription=letter.subscription, topic=topic, reason=str(result))
            report.stopped_early = report.stopped_early or options.stop_on_error
        else:
            report.moved += 1
            report.note("moved", **ids, subscription=letter.subscription, topic=topic, new_message_id=result,
                        redrive_count=letter.redrive_count + 1)
        run.step()


def purge(subscriptions: list[tuple[EventType, Subscription]], selection: Filter, limit: int | None = None,
          max_scan: int = DEFAULT_MAX_SCAN, report: RunReport | None = None) -> RunReport:
    """Acknowledge (drop) the matching messages. The caller has checked confirmation and filter."""
    if selection.is_empty():
        raise ValueError("purge needs a filter")
    report = report if report is not None else RunReport()
    now = datetime.now(UTC)
    for _, subscription in subscriptions:
        with Pass(subscription, max_scan) as walk:
            for batch in walk.batches():
                for letter in batch:
                    if limit is not None and report.moved >= limit:
                        return report
                    if selection.matches(letter, now):
                        report.matched += 1
                        walk.settle([letter])
                        report.moved += 1
                        report.note("purged", letter.event_id, letter.correlation_id, subscription=subscription.name,
                                    body=letter.data.decode("utf-8", "replace")[:2000])
    return report

