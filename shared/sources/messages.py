"""What every WhatsApp adapter shares: sender phones, timestamps, the message envelope."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.envelope import Envelope, build_envelope
from shared.inbound import EdgeError, Ignored, Inbound, Outcome, validation_fields
from shared.payloads import E164_CONTEXT, MessageReceived
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
    """A provider's sender id (JID or digits with the country code) as E.164 digits; a 400 naming `field` otherwise.

    Read as international first (never as a Brazilian national number that happens to have
    the same digits); `message_payload` takes the digits as they are, so each is parsed once.
    """
    try:
        return provider_phone(str(raw or ""))
    except InvalidPhone as exc:
        raise EdgeError(400, "invalid_request", "the sender is not a phone",
                        [{"field": field, "message": str(exc)}]) from exc


def unless_a_message(kind: str, *, message: str, status: str, statuses: Callable[[], Outcome]) -> Outcome | None:
    """What a provider callback of `kind` is when it does not carry an incoming message (None when it does):
    its delivery statuses when it is the `status` kind, otherwise ignored."""
    if kind == message:
        return None
    return statuses() if kind == status else Ignored(f"{kind} is not an incoming message")


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# The one vocabulary every provider's message kinds are read into (the README's table).
MESSAGE_TYPES = ("text", "image", "audio", "voice", "video", "document", "sticker", "location", "contacts",
                 "reaction", "interactive_reply", "template", "order", "unknown")


@dataclass(frozen=True)
class Content:
    """What a message says, read by its provider's table.

    `details` is the media's metadata or the structured part of a location, contact,
    reply, order or template; `raw_type` is the provider's own name for the kind,
    wrappers included (`ephemeralMessage/audioMessage`), so an unknown kind is kept.
    """

    message_type: str
    raw_type: str
    text: str | None = None
    details: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        assert self.message_type in MESSAGE_TYPES, self.message_type


def pick(source: Any, keys: tuple[str, ...], **extra: Any) -> dict[str, Any] | None:
    """The named keys of `source` that carry a value, plus `extra`; None when there is nothing."""
    found = {k: source[k] for k in keys if isinstance(source, dict) and source.get(k) not in (None, "", [], {})}
    found.update({k: v for k, v in extra.items() if v not in (None, "", [], {}, False)})
    return found or None


# A click-to-WhatsApp ad as Meta (snake_case) and WhatsApp Web's externalAdReply (camelCase) name it.
_REFERRAL_KEYS = {"source_id": "source_id", "sourceId": "source_id", "source_type": "source_type",
                  "sourceType": "source_type", "source_url": "source_url", "sourceUrl": "source_url",
                  "ctwa_clid": "ctwa_clid", "ctwaClid": "ctwa_clid", "headline": "headline", "title": "headline",
                  "body": "body", "media_type": "media_type", "mediaType": "media_type", "image_url": "image_url",
                  "video_url": "video_url", "thumbnail_url": "thumbnail_url", "thumbnailUrl": "thumbnail_url"}


def referral(raw: Any) -> dict[str, Any] | None:
    """The ad (or post) a lead clicked to start the chat, in one shape; None when there is none."""
    if not isinstance(raw, dict):
        return None
    found: dict[str, Any] = {}
    for key, name in _REFERRAL_KEYS.items():
        value = raw.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            found.setdefault(name, str(value)[:2000])
    if not any(k in found for k in ("source_id", "source_url", "ctwa_clid")):
        return None
    return found


def message_payload(*, provider: str, message_id: str, phone: str, chat_id: str, display_name: str | None,
                    content: Content, sent_at: datetime | None, ad: dict[str, Any] | None = None,
                    status_reply: bool = False) -> MessageReceived:
    """The `message_received` payload every WhatsApp adapter builds from what it read; `phone` is
    `sender_phone`'s E.164 digits, already normalised (E164_CONTEXT)."""
    return MessageReceived.model_validate(dict(
        provider=provider, provider_message_id=message_id, phone=phone, chat_id=chat_id,
        display_name=text_or_none(display_name), text=content.text, message_type=content.message_type,
        raw_type=content.raw_type[:200], media=content.details, sent_at=sent_at, referral=ad,
        status_reply=status_reply or None,
    ), context=E164_CONTEXT)


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
