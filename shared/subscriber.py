"""The one Pub/Sub runner: a pushed message (as a CloudEvent) to its function's verb.

Every Pub/Sub function goes through here: decode, poison, log context, topology, then
the function's processor (the ledger and a writer by default; reply_sender's outbox and
the assistant's turn bring their own bookkeeping).

Returning acknowledges the message; raising makes functions-framework answer 500,
so Pub/Sub retries with backoff and, after the configured attempts, dead-letters.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.db import Database
from shared.envelope import Envelope
from shared.log import get_logger, log_context
from shared.payloads import build_for
from shared.topology import load_topology
from shared.writers import WRITERS, ledger, writer_for

log = get_logger(__name__)


class PoisonMessage(ValueError):
    """A message no retry can fix (undecodable, wrong topic); it ends in the dead-letter topic.

    `attributes` are the message's: the envelope's ids ride there, so the log line that
    reports it names the event even when the body cannot be read.
    """

    def __init__(self, message: str, attributes: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.attributes = attributes or {}


@dataclass(frozen=True)
class PushedMessage:
    envelope: Envelope
    message_id: str | None
    topic: str | None
    attributes: dict[str, str]


def decode(cloud_event: Any) -> PushedMessage:
    """The envelope inside a Pub/Sub CloudEvent (`data.message.data`, base64)."""
    message = (cloud_event.data or {}).get("message") or {}
    source = str(cloud_event.get("source") or "")
    topic = source.rsplit("/topics/", 1)[-1] if "/topics/" in source else None
    attributes = {str(k): str(v) for k, v in dict(message.get("attributes") or {}).items()}
    try:
        envelope = Envelope.from_bytes(base64.b64decode(message["data"]))
    except Exception as exc:
        raise PoisonMessage(f"message {message.get('messageId')} is not an envelope: {exc}", attributes) from exc
    return PushedMessage(envelope, message.get("messageId"), topic, attributes)


Process = Callable[[Envelope, str | None], str]  # (envelope, Pub/Sub message id) -> what happened
Processor = Callable[[Database], Process]  # made once the message is known to be for this function


def write_through_ledger(db: Database) -> Process:
    """The writers' verb: one ledger statement that records the event and makes its type's write."""
    def process(envelope: Envelope, message_id: str | None) -> str:
        return ledger.process(db, envelope, message_id, writer_for(envelope.event_type))

    return process


def prepare(function: str, *, writers: bool = True) -> None:
    """Load, with the function, what each of its messages needs: the payload models of its event types
    and, for the ledger's functions (`writers`), the writer of each event type it is subscribed to."""
    build_for(function)
    if writers:
        for event_type in sorted(load_topology().subscribed_event_types(function) & set(WRITERS)):
            writer_for(event_type)


def run(cloud_event: Any, *, function: str, processor: Processor = write_through_ledger,
        acknowledge_poison: str | None = None, report: str = "event %s") -> str:
    """Entry for every deployed Pub/Sub function: the instance's settings, logging and pool.

    The pool is asked for only when a message is for this function, so a poison message
    costs no connection.
    """
    from shared.config import get_settings
    from shared.db import get_database
    from shared.log import configure_logging

    configure_logging(get_settings().log_level)

    def process(envelope: Envelope, message_id: str | None) -> str:
        return processor(get_database())(envelope, message_id)

    return handle(cloud_event, function=function, process=process, acknowledge_poison=acknowledge_poison,
                  report=report)


def handle(cloud_event: Any, *, function: str, db: Database | None = None, process: Process | None = None,
           acknowledge_poison: str | None = None, report: str = "event %s") -> str:
    """Decode, refuse poison, set the log context, check the topology, then `process` (the ledger by default).

    A poison message raises, so Pub/Sub dead-letters it; with `acknowledge_poison` (why that
    is safe: another subscription on the topic dead-letters it) it is logged and acknowledged.
    `report` is the line logged with the outcome; an `over_...` outcome is a warning.
    """
    if process is None:
        if db is None:
            raise TypeError("handle() needs a db or a process")
        process = write_through_ledger(db)
    with log_context(function=function):
        try:
            pushed = decode(cloud_event)
        except PoisonMessage as exc:
            # The failed-events metric counts this line; the ids come from the message's attributes.
            named = {k: exc.attributes[k] for k in ("event_id", "event_type", "correlation_id", "tenant")
                     if exc.attributes.get(k)}
            if acknowledge_poison is None:
                log.exception("undecodable message; Pub/Sub will retry it, then dead-letter it",
                              extra={"event_status": "failed", **named})
                raise
            log.exception("undecodable message; not processed (%s)", acknowledge_poison,
                          extra={"event_status": "failed", **named})
            return "poison: not an envelope"
        envelope = pushed.envelope
        with log_context(correlation_id=envelope.correlation_id, event_id=envelope.event_id,
                         event_type=envelope.event_type, tenant=envelope.tenant, message_id=pushed.message_id):
            subscribed = load_topology().subscribed_event_types(function)
            if envelope.event_type not in subscribed:
                log.error("event type not handled by this function", extra={"event_status": "failed"})
                if acknowledge_poison is not None:
                    return f"poison: {envelope.event_type} is not handled here"
                raise PoisonMessage(f"{function} does not handle {envelope.event_type} (handles {sorted(subscribed)})")
            result = process(envelope, pushed.message_id)
            # event_status "over_limit" on this line is what the tenant-limit alert metric counts.
            level = logging.WARNING if result.startswith("over_") else logging.INFO
            log.log(level, report, result, extra={"event_status": result.split(":")[0]})
            return result
