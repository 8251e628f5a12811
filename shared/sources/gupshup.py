"""Gupshup callbacks: v2 `type == "message"` events, or the Cloud API shape Gupshup v3 sends.

In v2 the message sits in `payload` and its content in `payload.payload`, by
`payload.type`; `message-event` (delivery statuses) and `user-event` (opt-ins) are not
messages. `timestamp` is in milliseconds. A v3 callback (with `entry`) is read by the
Cloud API adapter, named `gupshup`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.edge import Ignored, Inbound, Outcome
from shared.payloads import MessageReceived
from shared.sources import meta_cloud, statuses
from shared.sources.messages import envelope_for, epoch, sender_phone, text_or_none, validate_part
from shared.tenants import SourceSettings
from shared.verification import require_known_id

PROVIDER = "gupshup"
_cloud_api = meta_cloud.adapter(PROVIDER)
_MEDIA = ("image", "video", "file", "audio", "sticker")


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


def _text(kind: str, content: dict[str, Any]) -> str | None:
    if kind in ("text", "quick_reply"):
        return text_or_none(content.get("text"))
    if kind in _MEDIA:
        return text_or_none(content.get("caption"))
    if kind in ("button_reply", "list_reply"):
        return text_or_none(content.get("title"))
    return None


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    if isinstance(inbound.body, dict) and "entry" in inbound.body:
        return _cloud_api(inbound, settings)
    callback = _Callback.model_validate(inbound.body)
    if settings is not None:
        require_known_id(settings.ids, [callback.app], "app")
    if callback.type == "message-event":
        return statuses.gupshup(inbound)
    if callback.type != "message":
        return Ignored(f"{callback.type} is not an incoming message")
    message = validate_part(_Message, callback.payload, "payload.")
    phone = sender_phone(message.sender.phone or message.source, "payload.sender.phone")
    media: dict[str, Any] | None = None
    if message.type in _MEDIA:
        media = {"kind": message.type, **{k: message.payload[k] for k in ("url", "contentType", "name")
                                          if k in message.payload}}
    return [envelope_for(inbound, MessageReceived(
        provider=PROVIDER,
        provider_message_id=message.id,
        phone=phone,
        chat_id=message.source,
        display_name=text_or_none(message.sender.name),
        text=_text(message.type, message.payload),
        message_type=message.type,
        media=media,
        sent_at=epoch(callback.timestamp, millis=True),
    ))]
