"""What every WhatsApp adapter shares: sender phones, timestamps, the message envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.edge import EdgeError, Inbound, validation_fields
from shared.envelope import Envelope, build_envelope
from shared.payloads import MessageReceived
from shared.phones import InvalidPhone, provider_phone

ModelT = TypeVar("ModelT", bound=BaseModel)
# Later than any real message; a bigger number is milliseconds or nonsense.
_MAX_SECONDS = 32503680000  # year 3000


def epoch(raw: Any, *, millis: bool = False) -> datetime | None:
    """A Unix timestamp (seconds, or milliseconds with `millis`) as UTC; None when absent or absurd."""
    if raw in (None, "") or isinstance(raw, bool):
        return None
    try:
        seconds = float(raw) / (1000 if millis else 1)
    except (TypeError, ValueError):
        return None
    if not 0 < seconds < _MAX_SECONDS:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def sender_phone(raw: Any, field: str) -> str:
    """A provider's sender id (JID or digits with the country code) as `+E.164`; a 400 naming `field` otherwise.

    With its '+', the payload's phone validator reads it as international, never as a
    Brazilian national number that happens to have the same digits.
    """
    try:
        return "+" + provider_phone(str(raw or ""))
    except InvalidPhone as exc:
        raise EdgeError(400, "invalid_request", "the sender is not a phone",
                        [{"field": field, "message": str(exc)}]) from exc


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def envelope_for(inbound: Inbound, message: MessageReceived) -> Envelope:
    """The `message_received` envelope; the provider's message id makes the event id stable."""
    return build_envelope(event_type="message_received", payload=message, tenant=inbound.tenant,
                          source=message.provider, correlation_id=inbound.correlation_id,
                          source_id=message.provider_message_id, occurred_at=message.sent_at)


def validate_part(model: type[ModelT], data: Any, path: str) -> ModelT:
    """Validate a nested part of a webhook, naming offending fields by their full path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EdgeError(400, "invalid_request", "the webhook has invalid fields",
                        validation_fields(exc, prefix=path)) from exc
