"""Dead-letter subscriptions: depth, peek, redrive and purge, never losing a message.

Every read is a pull without ack followed by a nack (modify_ack_deadline 0): the
emulator has no Monitoring API, so depth and oldest age come from this peek in both
places (capped by `max_scan`). A message is acknowledged on the dead-letter
subscription only after its republish is confirmed (redrive) or when an operator
confirmed its purge; everything else is released as it was found.

One pass pulls each message once: the ones not settled stay leased until the pass
ends, so the pull reaches past them instead of getting them back again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Protocol

from ops.audit import RunReport
from shared.envelope import Envelope
from shared.publisher import PublishError
from shared.topology import EventType, Topology

DEAD_LETTER_ATTR_PREFIX = "CloudPubSubDeadLetter"
SOURCE_SUBSCRIPTION_ATTR = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_COUNT_ATTR = "CloudPubSubDeadLetterSourceDeliveryCount"
REDRIVE_COUNT_ATTR = "redrive_count"
REDRIVE_RUN_ATTR = "redrive_run"
DEFAULT_MAX_REDRIVES = 3
DEFAULT_MAX_SCAN = 10_000
PULL_BATCH = 100


class RawPublisher(Protocol):
    """The port a redrive publishes through (shared.publisher.PubSubPublisher in production)."""

    def publish_raw(self, topic: str, data: bytes, attributes: dict[str, str]) -> str: ...


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
        if letters:
            self.subscriber.acknowledge(subscription=self.path, ack_ids=[m.ack_id for m in letters])

    def nack(self, letters: list[DeadLetter]) -> None:
        for start in range(0, len(letters), 1000):
            chunk = letters[start:start + 1000]
            self.subscriber.modify_ack_deadline(subscription=self.path, ack_ids=[m.ack_id for m in chunk],
                                                ack_deadline_seconds=0)


class Pass:
    """One walk over a subscription: each message seen once; what is not settled is released at the end."""

    def __init__(self, subscription: Subscription, max_messages: int = DEFAULT_MAX_SCAN) -> None:
        self.subscription = subscription
        self.max_messages = max_messages
        self._held: dict[str, DeadLetter] = {}
        self._seen: set[str] = set()

    def __enter__(self) -> Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def batches(self) -> Iterator[list[DeadLetter]]:
        while len(self._seen) < self.max_messages:
            pulled = self.subscription.pull(min(PULL_BATCH, self.max_messages - len(self._seen)))
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

    def settle(self, letter: DeadLetter) -> None:
        """Acknowledge: the message leaves the subscription."""
        self.subscription.ack([letter])
        self._held.pop(letter.message_id, None)

    def put_back(self, letter: DeadLetter) -> None:
        """Nack now (a failed publish): it stays, and is not offered again in this pass."""
        self.subscription.nack([self._held.pop(letter.message_id, letter)])

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
    """At most `rate` publishes per second over the run."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if self.interval:
            delay = self.next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.next_at = max(self.next_at, time.monotonic()) + self.interval


def redrive(subscriptions: list[tuple[EventType, Subscription]], publisher: RawPublisher, topology: Topology,
            options: RedriveOptions, report: RunReport | None = None, progress: Progress | None = None) -> RunReport:
    """Move matching dead letters back to their original topics; ack each only once its publish is confirmed.

    A failed publish is nacked at once (it stays) and reported; the run stops there
    unless `stop_on_error` is off. A message already redriven `max_redrives` times is
    left in place and reported. A dry run counts and releases everything.
    """
    report = report if report is not None else RunReport()
    pacer = _Pacer(options.rate)
    now = datetime.now(UTC)
    for dlq_type, subscription in subscriptions:
        if _done(report, options):
            break
        with Pass(subscription, options.max_scan) as walk:
            for batch in walk.batches():
                for letter in batch:
                    if _done(report, options):
                        break
                    if not options.selection.matches(letter, now):
                        continue
                    report.matched += 1
                    _redrive_one(walk, letter, original_topic(topology, dlq_type, letter), publisher, options,
                                 report, pacer)
                    if progress is not None:
                        progress(report)
                if _done(report, options):
                    break
    return report


def _done(report: RunReport, options: RedriveOptions) -> bool:
    attempted = report.would_move if options.dry_run else report.moved + report.failed
    return report.stopped_early or (options.limit is not None and attempted >= options.limit)


def _redrive_one(walk: Pass, letter: DeadLetter, topic: str, publisher: RawPublisher, options: RedriveOptions,
                 report: RunReport, pacer: _Pacer) -> None:
    ids = {"event_id": letter.event_id, "correlation_id": letter.correlation_id}
    if letter.redrive_count >= options.max_redrives:
        report.skipped += 1
        report.note("skipped", **ids, subscription=letter.subscription,
                    reason=f"redriven {letter.redrive_count} times (max {options.max_redrives}); left in place")
        return
    if options.dry_run:
        report.would_move += 1
        report.note("would_move", **ids, subscription=letter.subscription, topic=topic)
        return
    pacer.wait()
    try:
        message_id = publisher.publish_raw(topic, letter.data, republish_attributes(letter, options.run_id))
    except PublishError as exc:
        walk.put_back(letter)
        report.failed += 1
        report.errors.append(f"{letter.event_id}: {exc}")
        report.note("failed", **ids, subscription=letter.subscription, topic=topic, reason=str(exc))
        report.stopped_early = options.stop_on_error
        return
    walk.settle(letter)
    report.moved += 1
    report.note("moved", **ids, subscription=letter.subscription, topic=topic, new_message_id=message_id,
                redrive_count=letter.redrive_count + 1)


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
                        walk.settle(letter)
                        report.moved += 1
                        report.note("purged", letter.event_id, letter.correlation_id, subscription=subscription.name,
                                    body=letter.data.decode("utf-8", "replace")[:2000])
    return report

