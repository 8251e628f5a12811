"""A dead-lettered message as operators see it, and what they select it by (no I/O).

The attributes are read first (Pub/Sub's dead-letter ones and the envelope's ids ride
there); the envelope is decoded only when an attribute is missing or the body is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from shared.envelope import Envelope
from shared.topology import EventType, Topology

DEAD_LETTER_ATTR_PREFIX = "CloudPubSubDeadLetter"
SOURCE_SUBSCRIPTION_ATTR = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_COUNT_ATTR = "CloudPubSubDeadLetterSourceDeliveryCount"
REDRIVE_COUNT_ATTR = "redrive_count"
REDRIVE_RUN_ATTR = "redrive_run"
DEFAULT_MAX_REDRIVES = 3
DEFAULT_MAX_SCAN = 10_000


class _EnvelopeId:
    """An id the envelope carries, read as `DeadLetter.field` reads it: the attribute of that name first."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, letter: DeadLetter, owner: type | None = None) -> str | None:
        return letter.field(self.name)


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

    event_type = _EnvelopeId()
    event_id = _EnvelopeId()
    correlation_id = _EnvelopeId()
    tenant = _EnvelopeId()

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
        # A field is read only when it is asked for: reading one may decode the envelope.
        checks = ((self.event_types, "event_type"), (self.tenants, "tenant"),
                  (self.correlation_ids, "correlation_id"), (self.event_ids, "event_id"))
        if any(wanted and letter.field(name) not in wanted for wanted, name in checks):
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
