"""Evolution API webhooks (`messages.upsert`) to `message_received` envelopes.

Own messages, group chats, status broadcasts, delivery statuses (`messages.update`)
and other events are acknowledged and not published: they are not a lead talking to
the business. `@lid` senders are taken by their `remoteJidAlt` phone, never by the lid.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.edge import Ignored, Inbound, Outcome
from shared.payloads import MessageReceived
from shared.sources import statuses
from shared.sources.messages import envelope_for, epoch, sender_phone
from shared.tenants import SourceSettings
from shared.verification import require_known_id

PROVIDER = "evolution"
_CAPTIONED = ("imageMessage", "videoMessage", "documentMessage", "documentWithCaptionMessage")


class _Key(BaseModel):
    model_config = ConfigDict(extra="allow")
    remoteJid: str = Field(min_length=3)
    fromMe: bool = False
    id: str = Field(min_length=1)
    remoteJidAlt: str | None = None


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: _Key
    pushName: str | None = None
    message: dict[str, Any] | None = None
    messageType: str | None = None
    messageTimestamp: int | str | None = None


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    event: str = Field(min_length=1)
    instance: str | None = None
    data: Any = None


def _event_name(raw: str) -> str:
    return raw.strip().lower().replace("_", ".")


# Replies to buttons, lists and template buttons: (message key, field with the chosen text).
_REPLIES = (("buttonsResponseMessage", "selectedDisplayText"), ("templateButtonReplyMessage", "selectedDisplayText"),
            ("listResponseMessage", "title"))


def message_text(message: dict[str, Any]) -> str | None:
    """The words of a message: plain, extended, a media caption, or the chosen button/list option."""
    if isinstance(message.get("conversation"), str):
        return str(message["conversation"])
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict) and isinstance(extended.get("text"), str):
        return str(extended["text"])
    for kind in _CAPTIONED:
        media = message.get(kind)
        if kind == "documentWithCaptionMessage" and isinstance(media, dict):
            media = (media.get("message") or {}).get("documentMessage")
        if isinstance(media, dict) and isinstance(media.get("caption"), str):
            return str(media["caption"])
    for kind, text_field in _REPLIES:
        reply = message.get(kind)
        if isinstance(reply, dict) and isinstance(reply.get(text_field), str):
            return str(reply[text_field])
    return None


def _media(message: dict[str, Any]) -> dict[str, Any] | None:
    for kind in ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage"):
        media = message.get(kind)
        if isinstance(media, dict):
            return {"kind": kind.removesuffix("Message"),
                    **{k: media[k] for k in ("mimetype", "url", "fileName", "seconds") if k in media}}
    return None


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    webhook = _Webhook.model_validate(inbound.body)
    if settings is not None:
        require_known_id(settings.ids, [webhook.instance], "instance")
    event = _event_name(webhook.event)
    if event == "messages.update":
        return statuses.evolution(inbound, webhook.data)
    if event != "messages.upsert":
        return Ignored(f"event {webhook.event} is not an incoming message")
    data = _Data.model_validate(webhook.data)
    if data.key.fromMe:
        return Ignored("own message (fromMe)")
    jid = data.key.remoteJid
    if jid.endswith("@g.us"):
        return Ignored("group chat")
    if jid.endswith("@broadcast") or jid.endswith("@newsletter"):
        return Ignored("status broadcast or channel")
    if jid.endswith("@lid"):
        if not data.key.remoteJidAlt:
            return Ignored("@lid sender without a phone (remoteJidAlt)")
        jid = data.key.remoteJidAlt
    phone = sender_phone(jid, "data.key.remoteJidAlt" if jid != data.key.remoteJid else "data.key.remoteJid")
    message = data.message or {}
    message_type = data.messageType or next(iter(message), "unknown")
    sent_at = epoch(data.messageTimestamp)
    payload = MessageReceived(
        provider=PROVIDER,
        provider_message_id=data.key.id,
        phone=phone,
        chat_id=data.key.remoteJid,
        display_name=data.pushName or None,
        text=message_text(message),
        message_type=message_type,
        media=_media(message),
        sent_at=sent_at,
    )
    return [envelope_for(inbound, payload)]
