"""Gupshup callbacks: v2 `type == "message"` events, or the Cloud API shape Gupshup v3 sends.

In v2 the message sits in `payload` and its content in `payload.payload`, by
`payload.type`; `message-event` (delivery statuses) goes to shared/sources/statuses.py and
`user-event` (opt-ins) is not a message. `timestamp` is in milliseconds. A v3 callback (with `entry`) is read by the
Cloud API adapter, named `gupshup`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.inbound import Inbound, Outcome
from shared.sources import messages, meta_cloud, statuses
from shared.sources.messages import Content, pick, text_or_none
from shared.tenants import SourceSettings
from shared.verification import require_known_id

PROVIDER = "gupshup"
_cloud_api = meta_cloud.adapter(PROVIDER)


class _Sender(BaseModel):
    model_config = ConfigDict(extra="allow")
    phone: str | None = None
    name: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    source: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict)
    sender: _Sender = Field(default_factory=_Sender)


class _Callback(BaseModel):
    model_config = ConfigDict(extra="allow")
    app: str | None = None
    timestamp: int | None = None
    type: str = Field(min_length=1)
    payload: Any = None


_MEDIA_KEYS = ("url", "contentType", "name", "urlExpiry")
# Gupshup v2 `payload.type` -> (vocabulary, fields with the words, metadata kept).
_KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "text": ("text", ("text",), ()),
    "image": ("image", ("caption",), _MEDIA_KEYS),
    "video": ("video", ("caption",), _MEDIA_KEYS),
    "file": ("document", ("caption", "name"), _MEDIA_KEYS),
    "audio": ("audio", (), _MEDIA_KEYS),
    "sticker": ("sticker", (), _MEDIA_KEYS),
    "location": ("location", ("name", "address"), ("latitude", "longitude", "name", "address")),
    "contact": ("contacts", (), ("contacts",)),
    "button_reply": ("interactive_reply", ("title",), ("id", "reply")),
    "list_reply": ("interactive_reply", ("title", "description"), ("id", "reply", "postbackText", "description")),
    # A template's quick-reply button ({text, type: button}) or an interactive quick reply ({title, id, reply}).
    "quick_reply": ("interactive_reply", ("text", "title"), ("payload", "id", "reply")),
    "reaction": ("reaction", ("emoji", "text"), ("msgId", "id")),
    "order": ("order", ("text",), ("catalog_id", "product_items")),
}


def content(kind: str, c: dict[str, Any]) -> Content:
    """One row of the table: a Gupshup v2 message kind to the shared vocabulary."""
    if kind not in _KINDS:
        return Content("unknown", kind, text_or_none(c.get("text")))
    vocabulary, text_fields, kept = _KINDS[kind]
    text = next((str(c[f]) for f in text_fields if text_or_none(c.get(f))), None)
    if kind == "contact":
        names = [str((x.get("name") or {}).get("formatted_name")) for x in c.get("contacts") or []
                 if isinstance(x, dict) and isinstance(x.get("name"), dict)]
        text = ", ".join(names) or None
    media_kind = vocabulary if kept is _MEDIA_KEYS else None
    return Content(vocabulary, kind, text, pick(c, kept, kind=media_kind))


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    if isinstance(inbound.body, dict) and "entry" in inbound.body:
        return _cloud_api(inbound, settings)
    callback = _Callback.model_validate(inbound.body)
    require_known_id(settings, [callback.app], "app")
    if (other := messages.unless_a_message(callback.type, message="message", status="message-event",
                                           statuses=lambda: statuses.gupshup(inbound))) is not None:
        return other
    message = messages.validate_part(_Message, callback.payload, "payload.")
    phone = messages.sender_phone(message.sender.phone or message.source, "payload.sender.phone")
    extra = message.model_extra or {}
    return [messages.envelope_for(inbound, messages.message_payload(
        provider=PROVIDER, message_id=message.id, phone=phone, chat_id=message.source,
        display_name=message.sender.name, content=content(message.type, message.payload),
        sent_at=messages.epoch(callback.timestamp, millis=True),
        ad=messages.referral(extra.get("referral") or message.payload.get("referral")),
    ))]
