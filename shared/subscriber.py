"""The subscriber side: a pushed Pub/Sub message (as a CloudEvent) to one ledger write.

Returning acknowledges the message; raising makes functions-framework answer 500,
so Pub/Sub retries with backoff and, after the configured attempts, dead-letters.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.db import Database
from shared.envelope import Envelope
from shared.log import get_logger, log_context
from shared.topology import load_topology
from shared.writers import ledger, writer_for

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


Process = Callable[[Envelope, str | None], ledger.Result]  # (envelope, Pub/Sub message id) -> the ledger's result


def run(cloud_event: Any, *, function: str, processor: Callable[[Database], Process] | None = None) -> ledger.Result:
    """Entry for a deployed subscriber: the instance's settings, logging and pool."""
    from shared.config import get_settings
    from shared.db import get_database
    from shared.log import configure_logging

    configure_logging(get_settings().log_level)
    db = get_database()
    return handle(cloud_event, function=function, db=db, process=processor(db) if processor else None)


def handle(cloud_event: Any, *, function: str, db: Database, process: Process | None = None) -> ledger.Result:
    """`process` replaces the plain ledger write (reply_sender's outbox commits before its send)."""
    with log_context(function=function):
        try:
            pushed = decode(cloud_event)
        except PoisonMessage as exc:
            # The failed-events metric counts this line; the ids come from the message's attributes.
            named = {k: exc.attributes[k] for k in ("event_id", "event_type", "correlation_id", "tenant")
                     if exc.attributes.get(k)}
            log.exception("undecodable message; Pub/Sub will retry it, then dead-letter it",
                          extra={"event_status": "failed", **named})
            raise
        envelope = pushed.envelope
        with log_context(correlation_id=envelope.correlation_id, event_id=envelope.event_id,
                         event_type=envelope.event_type, tenant=envelope.tenant, message_id=pushed.message_id):
            subscribed = load_topology().subscribed_event_types(function)
            if envelope.event_type not in subscribed:
                log.error("event type not handled by this function", extra={"event_status": "failed"})
                raise PoisonMessage(f"{function} does not handle {envelope.event_type} (handles {sorted(subscribed)})")
            result = (process(envelope, pushed.message_id) if process
                      else ledger.process(db, envelope, pushed.message_id, writer_for(envelope.event_type)))
            log.info("event %s", result.value, extra={"event_status": result.value})
            return result
