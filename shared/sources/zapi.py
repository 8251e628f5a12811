"""Z-API webhooks (`ReceivedCallback`) to `message_received` envelopes.

Z-API posts every kind of callback to its URLs; only a `ReceivedCallback` from a person
(not `fromMe`, a group, a newsletter, a broadcast, a status reply or a notification)
is a message. `momment` is in milliseconds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.edge import Ignored, Inbound, Outcome
from shared.payloads import MessageReceived
from shared.sources import statuses
from shared.sources.messages import envelope_for, epoch, sender_phone, text_or_none
from shared.tenants import SourceSettings
from shared.verification import require_known_id

PROVIDER = "zapi"
# Message kind -> (field with the words, media URL field); checked in this order.
_KINDS: tuple[tuple[str, str | None, str | None], ...] = (
    ("text", "message", None),
    ("image", "caption", "imageUrl"),
    ("video", "caption", "videoUrl"),
    ("document", "caption", "documentUrl"),
    ("audio", None, "audioUrl"),
    ("sticker", None, "stickerUrl"),
    ("buttonsResponseMessage", "message", None),
    ("listResponseMessage", "title", None),
    ("location", "name", None),
    ("contact", "displayName", None),
    ("reaction", "value", None),
)


class _Callback(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)
    instanceId: str | None = None
    messageId: str | None = None
    phone: str | None = None
    fromMe: bool = False
    isGroup: bool = False
    isNewsletter: bool = False
    broadcast: bool = False
    isStatusReply: bool = False
    notification: str | None = None
    momment: int | None = None
    senderName: str | None = None
    chatName: str | None = None


def _content(callback: _Callback) -> tuple[str, str | None, dict[str, Any] | None]:
    """(message type, text, media) from whichever content object the callback carries."""
    extra = callback.model_extra or {}
    for kind, text_field, url_field in _KINDS:
        content = extra.get(kind)
        if not isinstance(content, dict):
            continue
        text = text_or_none(content.get(text_field)) if text_field else None
        if kind == "document" and text is None:
            text = text_or_none(content.get("title"))
        media = None
        if url_field:
            media = {"kind": kind, **{k: content[k] for k in (url_field, "mimeType", "fileName") if k in content}}
        return kind, text, media
    return "unknown", None, None


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    callback = _Callback.model_validate(inbound.body)
    if settings is not None:
        require_known_id(settings.ids, [callback.instanceId], "instanceId")
    if callback.type == "MessageStatusCallback":
        return statuses.zapi(inbound)
    if callback.type != "ReceivedCallback":
        return Ignored(f"{callback.type} is not an incoming message")
    if callback.fromMe:
        return Ignored("own message (fromMe)")
    if callback.isGroup or (callback.phone or "").endswith("-group"):
        return Ignored("group chat")
    if callback.isNewsletter or callback.broadcast:
        return Ignored("newsletter or broadcast")
    if callback.isStatusReply:
        return Ignored("reply to a status")
    if callback.notification:
        return Ignored(f"notification {callback.notification}, not a message")
    if not callback.messageId:
        return Ignored("callback without a messageId")
    if (callback.phone or "").endswith("@lid"):
        return Ignored("@lid sender without a phone")
    phone = sender_phone(callback.phone, "phone")
    message_type, text, media = _content(callback)
    sent_at = epoch(callback.momment, millis=True)
    return [envelope_for(inbound, MessageReceived(
        provider=PROVIDER,
        provider_message_id=callback.messageId,
        phone=phone,
        chat_id=str(callback.phone),
        display_name=text_or_none(callback.senderName) or text_or_none(callback.chatName),
        text=text,
        message_type=message_type,
        media=media,
        sent_at=sent_at,
    ))]
