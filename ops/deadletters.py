"""Dead-letter subscriptions: depth, peek, redrive and purge, never losing a message.

Every read is a pull without ack followed by a nack (modify_ack_deadline 0): the
emulator has no Monitoring API, so depth and oldest age come from this peek in both
places (capped by `max_scan`). A message is acknowledged on the dead-letter
subscription only after its republish is confirmed (redrive) or when an operator
confirmed its purge; everything else is released as it was found.

One pass pulls each message once: the ones not settled stay leased until the pass
ends, so the pull reaches past them instead of getting them back again.

A redrive works a pull at a time: the batch's chosen messages are published together,
every confirmation is awaited, and exactly the confirmed ones are acknowledged (one
request); a failed one is nacked and reported. Messages waiting for their chunk (under
`--rate`, or behind slow confirmations) have their lease renewed before it could run out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from ops.audit import RunReport
from shared.envelope import Envelope
from shared.publisher import PublishError, RawMessage
from shared.topology import EventType, Topology

DEAD_LETTER_ATTR_PREFIX = "CloudPubSubDeadLetter"
SOURCE_SUBSCRIPTION_ATTR = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_COUNT_ATTR = "CloudPubSubDeadLetterSourceDeliveryCount"
REDRIVE_COUNT_ATTR = "redrive_count"
REDRIVE_RUN_ATTR = "redrive_run"
DEFAULT_MAX_REDRIVES = 3
DEFAULT_MAX_SCAN = 10_000
PULL_BATCH = 100  # messages per pull
PUBLISH_BATCH = 100  # messages a redrive publishes together (the publisher client's max_messages per batch)
PACED_CHUNK_SECONDS = 0.1  # under --rate, publish this many seconds' worth at a time
ACK_IDS_PER_REQUEST = 1000
# The dead-letter ops subscriptions' ack deadline (terraform/pubsub.tf, ops/provision.py): a pulled message's lease.
ASSUMED_ACK_DEADLINE = 60
MAX_ACK_DEADLINE = 600  # Pub/Sub's maximum
LEASE_SLACK_SECONDS = 10.0  # renew a lease while at least a publish timeout plus this is left


class RawPublisher(Protocol):
    """The port a redrive publishes through (shared.publisher.PubSubPublisher in production).

    `publish_raw_batch` publishes every (topic, data, attributes) at once and waits for each
    confirmation, all within `timeout_seconds`; it answers, in order, each message id or the
    PublishError of that message, and raises for none of them.
    """

    timeout_seconds: float

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]: ...


# -- reading -------------------------------------------------------------------
@dataclass(frozen=True)
class DeadLetter:
    """One message on a dead-letter subscription, read attributes first, envelope when needed."""

    subscription: str
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    published_at: datetime | None

    @cached_property
    def envelope(self) -> Envelope | None:
        try:
            return Envelope.from_bytes(self.data)
        except Exception:
            return None

    @property
    def decode_error(self) -> str | None:
        if self.envelope is not None:
            return None
        try:
            Envelope.from_bytes(self.data)
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc)[:200]}"
        return None

    def field(self, name: str) -> str | None:
        if self.attributes.get(name):
            return self.attributes[name]
        value = getattr(self.envelope, name, None) if self.envelope is not None else None
        return None if value is None else str(value)

    @property
    def event_type(self) -> str | None:
        return self.field("event_type")

    @property
    def event_id(self) -> str | None:
        return self.field("event_id")

    @property
    def correlation_id(self) -> str | None:
        return self.field("correlation_id")

    @property
    def tenant(self) -> str | None:
        return self.field("tenant")

    @property
    def source_subscription(self) -> str | None:
        return self.attributes.get(SOURCE_SUBSCRIPTION_ATTR)

    @property
    def delivery_count(self) -> int | None:
        return _int_or_none(self.attributes.get(DELIVERY_COUNT_ATTR))

    @property
    def redrive_count(self) -> int:
        return _int_or_none(self.attributes.get(REDRIVE_COUNT_ATTR)) or 0

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.published_at is None else max(0.0, (now - self.published_at).total_seconds())

    def summary(self, now: datetime, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "subscription": self.subscription, "message_id": self.message_id, "event_type": self.event_type,
            "event_id": self.event_id, "correlation_id": self.correlation_id, "tenant": self.tenant,
            "source_subscription": self.source_subscription, "delivery_count": self.delivery_count,
            "redrive_count": self.redrive_count, "dead_lettered_at": self.published_at,
            "age_seconds": self.age_seconds(now),
        }
        if with_body:
            out["attributes"] = dict(self.attributes)
            out["envelope"] = (self.envelope.model_dump(mode="json") if self.envelope is not None
                               else {"undecodable": self.decode_error, "data": self.data.decode("utf-8", "replace")})
        return out


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


def from_received(subscription: str, received: Any) -> DeadLetter:
    message = received.message
    published = message.publish_time
    published_at = None
    if published is not None:
        published_at = published if published.tzinfo else published.replace(tzinfo=UTC)
    return DeadLetter(subscription=subscription, ack_id=received.ack_id, message_id=message.message_id,
                      data=bytes(message.data), attributes=dict(message.attributes), published_at=published_at)


@dataclass(frozen=True)
class Filter:
    """What an operator selects: each given criterion must match (values within one are alternatives)."""

    event_types: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    correlation_ids: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    older_than: timedelta | None = None
    newer_than: timedelta | None = None

    def is_empty(self) -> bool:
        return not (self.event_types or self.tenants or self.correlation_ids or self.event_ids
                    or self.older_than or self.newer_than)

    def matches(self, letter: DeadLetter, now: datetime) -> bool:
        checks = ((self.event_types, letter.event_type), (self.tenants, letter.tenant),
                  (self.correlation_ids, letter.correlation_id), (self.event_ids, letter.event_id))
        if any(wanted and value not in wanted for wanted, value in checks):
            return False
        age = letter.age_seconds(now)
        if self.older_than is not None and (age is None or age < self.older_than.total_seconds()):
            return False
        return not (self.newer_than is not None and (age is None or age > self.newer_than.total_seconds()))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: list(v) for k, v in (("event_types", self.event_types), ("tenants", self.tenants),
                               ("correlation_ids", self.correlation_ids), ("event_ids", self.event_ids)) if v}
        if self.older_than is not None:
            out["older_than_seconds"] = self.older_than.total_seconds()
        if self.newer_than is not None:
            out["newer_than_seconds"] = self.newer_than.total_seconds()
        return out


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90`, `30s`, `10m`, `2h`, `7d`."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 10m, 2h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def dead_letter_subscriptions(topology: Topology, event_types: tuple[str, ...] = ()) -> list[EventType]:
    """The event types whose dead-letter subscriptions a command reads (all, or the named ones)."""
    for name in event_types:
        topology.event_type(name)  # KeyError names the known ones
    return [et for et in topology.event_types.values() if not event_types or et.name in event_types]


# -- the subscription ----------------------------------------------------------
class Subscription:
    """Pull, ack and nack on one dead-letter subscription (the port to Pub/Sub)."""

    def __init__(self, subscriber: Any, project: str, name: str, *, emulator: bool, wait_seconds: float = 5.0):
        self.subscriber = subscriber
        self.name = name
        self.path = f"projects/{project}/subscriptions/{name}"
        self.emulator = emulator
        self.wait_seconds = wait_seconds

    def pull(self, max_messages: int) -> list[DeadLetter]:
        # The emulator answers an empty pull only at the deadline; return_immediately keeps a scan fast.
        # In the cloud it may return nothing while messages wait, so there a normal pull is used.
        from google.api_core.exceptions import DeadlineExceeded

        request: dict[str, Any] = {"subscription": self.path, "max_messages": max_messages}
        if self.emulator:
            request["return_immediately"] = True
        try:
            response = self.subscriber.pull(request=request, timeout=self.wait_seconds)
        except DeadlineExceeded:
            return []
        return [from_received(self.name, r) for r in response.received_messages]

    def ack(self, letters: list[DeadLetter]) -> None:
        for start in range(0, len(letters), ACK_IDS_PER_REQUEST):
            chunk = letters[start:start + ACK_IDS_PER_REQUEST]
            self.subscriber.acknowledge(subscription=self.path, ack_ids=[m.ack_id for m in chunk])

    def nack(self, letters: list[DeadLetter]) -> None:
        self.lease(letters, 0)

    def lease(self, letters: list[DeadLetter], seconds: int) -> None:
        """Set the ack deadline of these messages to `seconds` from now (0 releases them)."""
        for start in range(0, len(letters), ACK_IDS_PER_REQUEST):
            chunk = letters[start:start + ACK_IDS_PER_REQUEST]
            self.subscriber.modify_ack_deadline(subscription=self.path, ack_ids=[m.ack_id for m in chunk],
                                                ack_deadline_seconds=seconds)


class Pass:
    """One walk over a subscription: each message seen once; what is not settled is released at the end.

    `leased_until` is when the last pull's messages run out of lease (monotonic clock),
    taking the subscription's ack deadline as ASSUMED_ACK_DEADLINE; `lease` renews it.
    """

    def __init__(self, subscription: Subscription, max_messages: int = DEFAULT_MAX_SCAN) -> None:
        self.subscription = subscription
        self.max_messages = max_messages
        self.leased_until = 0.0
        self._held: dict[str, DeadLetter] = {}
        self._seen: set[str] = set()

    def __enter__(self) -> Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def batches(self) -> Iterator[list[DeadLetter]]:
        while len(self._seen) < self.max_messages:
            pulled_at = time.monotonic()
            pulled = self.subscription.pull(min(PULL_BATCH, self.max_messages - len(self._seen)))
            self.leased_until = pulled_at + ASSUMED_ACK_DEADLINE
            fresh = [m for m in pulled if m.message_id not in self._seen]
            for letter in pulled:  # one that came back after its lease ran out is held again, not seen twice
                self._held[letter.message_id] = letter
            if not fresh:
                return
            self._seen.update(m.message_id for m in fresh)
            yield fresh

    @property
    def seen(self) -> int:
        return len(self._seen)

    def _take(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """The held copies (the latest ack id, should a message have come back in this pass), no longer held."""
        return [self._held.pop(letter.message_id, letter) for letter in letters]

    def settle(self, letters: list[DeadLetter]) -> None:
        """Acknowledge (one request per 1000): the messages leave the subscription."""
        self.subscription.ack(self._take(letters))

    def put_back(self, letters: list[DeadLetter]) -> None:
        """Nack now (a failed publish): they stay, and are not offered again in this pass."""
        self.subscription.nack(self._take(letters))

    def lease(self, letters: list[DeadLetter], seconds: int) -> None:
        """Lease these held messages (the rest of a batch, not yet published) for `seconds` from now."""
        renewed_at = time.monotonic()
        self.subscription.lease([self._held.get(m.message_id, m) for m in letters], seconds)
        self.leased_until = renewed_at + seconds

    def release(self) -> None:
        held, self._held = list(self._held.values()), {}
        self.subscription.nack(held)


# -- commands' logic -----------------------------------------------------------
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


def original_topic(topology: Topology, dlq_event_type: EventType, letter: DeadLetter) -> str:
    """The topic the message was dead-lettered from: its source subscription's topic in the topology."""
    source = letter.source_subscription
    for et in topology.event_types.values():
        if source in et.subscriptions:
            return et.topic
    return dlq_event_type.topic


def republish_attributes(letter: DeadLetter, run_id: int | None = None) -> dict[str, str]:
    """The original attributes without Pub/Sub's dead-letter ones, with the redrive count raised."""
    attributes = {k: v for k, v in letter.attributes.items() if not k.startswith(DEAD_LETTER_ATTR_PREFIX)}
    attributes[REDRIVE_COUNT_ATTR] = str(letter.redrive_count + 1)
    if run_id is not None:
        attributes[REDRIVE_RUN_ATTR] = str(run_id)
    return attributes


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


@dataclass
class _Run:
    """What one redrive call carries from batch to batch."""

    publisher: RawPublisher
    topology: Topology
    options: RedriveOptions
    report: RunReport
    progress: Progress | None
    pacer: _Pacer
    chunk_size: int
    renew_margin: float
    renew_to: int

    def step(self) -> None:
        if self.progress is not None:
            self.progress(self.report)


def redrive(subscriptions: list[tuple[EventType, Subscription]], publisher: RawPublisher, topology: Topology,
            options: RedriveOptions, report: RunReport | None = None, progress: Progress | None = None) -> RunReport:
    """Move matching dead letters back to their original topics; ack each only once its publish is confirmed.

    Batched: each pull (up to PULL_BATCH) is filtered, its chosen messages published together
    (PUBLISH_BATCH at a time, smaller chunks under `rate`), every confirmation awaited, and then
    exactly the confirmed ones are acknowledged in one request. A message whose publish failed
    is nacked (it stays) and reported; the run stops after that chunk unless `stop_on_error` is
    off. A message already redriven `max_redrives` times is left in place and reported. A dry
    run counts and releases everything. What is pulled and not settled (filtered out, not
    reached) is released when the subscription's pass ends.
    """
    report = report if report is not None else RunReport()
    margin, renew_to = lease_seconds(publisher.timeout_seconds)
    run = _Run(publisher, topology, options, report, progress, _Pacer(options.rate),
               publish_chunk_size(options.rate), margin, renew_to)
    now = datetime.now(UTC)
    for dlq_type, subscription in subscriptions:
        if _done(report, options):
            break
        with Pass(subscription, options.max_scan) as walk:
            for batch in walk.batches():
                chosen = _choose(run, dlq_type, batch, now)
                for start in range(0, len(chosen), run.chunk_size):
                    _publish_chunk(run, walk, chosen[start:start + run.chunk_size], chosen[start:])
                    if report.stopped_early:
                        break
                if _done(report, options):
                    break
    return report


def _done(report: RunReport, options: RedriveOptions, pending: int = 0) -> bool:
    attempted = report.would_move if options.dry_run else report.moved + report.failed + pending
    return report.stopped_early or (options.limit is not None and attempted >= options.limit)


def _choose(run: _Run, dlq_type: EventType, batch: list[DeadLetter], now: datetime) -> list[tuple[DeadLetter, str]]:
    """The batch's messages to publish, with their topics; skipped ones and a dry run's are reported here."""
    options, report = run.options, run.report
    chosen: list[tuple[DeadLetter, str]] = []
    for letter in batch:
        if _done(report, options, len(chosen)):
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


def _publish_chunk(run: _Run, walk: Pass, chunk: list[tuple[DeadLetter, str]],
                   unpublished: list[tuple[DeadLetter, str]]) -> None:
    """Publish a chunk, wait for every confirmation, ack the confirmed ones, nack the failed ones.

    Before publishing, the lease of the batch's unpublished messages is renewed if it could
    run out while this chunk's confirmations are awaited (slow publishes, a low rate).
    """
    options, report = run.options, run.report
    run.pacer.wait(len(chunk))
    if walk.leased_until - time.monotonic() < run.renew_margin:
        walk.lease([letter for letter, _ in unpublished], run.renew_to)
    results = run.publisher.publish_raw_batch(
        [(topic, letter.data, republish_attributes(letter, options.run_id)) for letter, topic in chunk])
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

