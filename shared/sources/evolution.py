"""Evolution API webhooks (`messages.upsert`) to `message_received` envelopes.

Delivery statuses (`messages.update`) go to shared/sources/statuses.py. Own messages,
group chats, status broadcasts and other events are acknowledged and not published: they are not a lead talking to
the business. A lead's reply to the business's status is a message (marked
`status_reply`). `@lid` senders are taken by their `remoteJidAlt` phone, never by the lid.
Wrapped content (disappearing, view-once, edited, captioned documents) is read inside.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.inbound import Ignored, Inbound, Outcome
from shared.sources import messages, statuses
from shared.sources.messages import Content, pick, text_or_none
from shared.tenants import SourceSettings
from shared.verification import require_known_id

PROVIDER = "evolution"


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


# Wrappers whose `message` holds the real content (disappearing, view-once, captioned documents, edits).
_WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "viewOnceMessageV2Extension",
             "documentWithCaptionMessage", "editedMessage", "groupMentionedMessage", "botInvokeMessage")
# Keys beside the content that are not content: encryption context, Evolution's media extras.
_NOT_CONTENT = ("messageContextInfo", "senderKeyDistributionMessage", "contextInfo", "base64", "mediaUrl")
_MAX_DEPTH = 8
_MEDIA_KEYS = ("url", "mimetype", "fileName", "fileLength", "seconds", "ptt", "height", "width", "pageCount",
               "mediaKey", "directPath", "gifPlayback", "isAnimated", "mediaUrl")


def _content_key(message: dict[str, Any]) -> str | None:
    return next((k for k in message if k not in _NOT_CONTENT), None)


def unwrap(message: dict[str, Any]) -> tuple[str, Any, list[str], dict[str, Any]]:
    """(kind, content, wrappers passed, innermost message dict); bounded, so any nesting ends."""
    wrappers: list[str] = []
    for _ in range(_MAX_DEPTH):
        kind = _content_key(message)
        if kind is None:
            return "unknown", None, wrappers, message
        content = message[kind]
        inner: Any = None
        if isinstance(content, dict):
            inner = content.get("editedMessage") if kind == "protocolMessage" else content.get("message")
        if (kind in _WRAPPERS or kind == "protocolMessage") and isinstance(inner, dict):
            wrappers.append(kind)
            message = inner
            continue
        return kind, content, wrappers, message
    return "unknown", None, wrappers, message


def _str(content: Any, *keys: str) -> str | None:
    for key in keys:
        value = content.get(key) if isinstance(content, dict) else None
        if text_or_none(value):
            return str(value)
    return None


def _read(kind: str, content: Any) -> Content:
    """One row of the table: a WhatsApp Web (Baileys) message kind to the shared vocabulary."""
    c: dict[str, Any] = content if isinstance(content, dict) else {}
    if kind == "conversation":
        return Content("text", kind, text_or_none(content))
    if kind == "extendedTextMessage":
        return Content("text", kind, _str(c, "text"), pick(c, ("matchedText", "title", "description")))
    if kind in ("imageMessage", "videoMessage", "ptvMessage", "stickerMessage", "documentMessage"):
        vocabulary = {"imageMessage": "image", "videoMessage": "video", "ptvMessage": "video",
                      "stickerMessage": "sticker", "documentMessage": "document"}[kind]
        return Content(vocabulary, kind, _str(c, "caption"), pick(c, _MEDIA_KEYS, kind=vocabulary))
    if kind == "audioMessage":
        voice = "voice" if c.get("ptt") else "audio"
        return Content(voice, kind, None, pick(c, _MEDIA_KEYS, kind=voice))
    if kind in ("locationMessage", "liveLocationMessage"):
        return Content("location", kind, _str(c, "name", "address", "caption", "comment"),
                       pick(c, ("degreesLatitude", "degreesLongitude", "name", "address", "url")))
    if kind == "contactMessage":
        return Content("contacts", kind, _str(c, "displayName"), pick(c, ("displayName", "vcard")))
    if kind == "contactsArrayMessage":
        names = [str(x.get("displayName")) for x in c.get("contacts") or [] if isinstance(x, dict)]
        return Content("contacts", kind, _str(c, "displayName") or ", ".join(names) or None,
                       pick(c, ("displayName",), names=names))
    if kind == "reactionMessage":
        return Content("reaction", kind, _str(c, "text"), pick(c.get("key"), ("id",)))
    if kind == "buttonsResponseMessage":
        return Content("interactive_reply", kind, _str(c, "selectedDisplayText"), pick(c, ("selectedButtonId",)))
    if kind == "listResponseMessage":
        reply: dict[str, Any] = c["singleSelectReply"] if isinstance(c.get("singleSelectReply"), dict) else {}
        return Content("interactive_reply", kind, _str(c, "title", "description"),
                       pick(c, ("title", "description"), selectedRowId=reply.get("selectedRowId")))
    if kind == "templateButtonReplyMessage":
        return Content("interactive_reply", kind, _str(c, "selectedDisplayText"), pick(c, ("selectedId",)))
    if kind == "interactiveResponseMessage":
        body = c.get("body") if isinstance(c.get("body"), dict) else {}
        flow = c.get("nativeFlowResponseMessage") if isinstance(c.get("nativeFlowResponseMessage"), dict) else {}
        return Content("interactive_reply", kind, _str(body, "text"), pick(flow, ("name", "paramsJson")))
    if kind == "pollUpdateMessage":
        return Content("interactive_reply", kind, None, pick(c.get("pollCreationMessageKey"), ("id",)))
    if kind == "templateMessage":
        shapes = ("hydratedTemplate", "hydratedFourRowTemplate", "fourRowTemplate")
        hydrated: dict[str, Any] = next((c[k] for k in shapes if isinstance(c.get(k), dict)), {})
        return Content("template", kind, _str(hydrated, "hydratedContentText", "hydratedTitleText"),
                       pick(hydrated, ("hydratedTitleText", "hydratedFooterText", "templateId")))
    if kind == "orderMessage":
        return Content("order", kind, _str(c, "message", "orderTitle"),
                       pick(c, ("orderId", "itemCount", "orderTitle", "totalAmount1000", "totalCurrencyCode")))
    if kind == "productMessage":
        product = c.get("product") if isinstance(c.get("product"), dict) else {}
        return Content("order", kind, _str(product, "title", "description"),
                       pick(product, ("productId", "title", "retailerId", "priceAmount1000", "currencyCode")))
    return Content("unknown", kind, _str(c, "text", "caption", "name", "title"))


def message_content(message: dict[str, Any]) -> Content:
    """The innermost content of an Evolution `data.message`, with the wrappers in its raw type."""
    kind, content, wrappers, _ = unwrap(message)
    read = _read(kind, content)
    if not wrappers:
        return read
    details = dict(read.details or {})
    if "editedMessage" in wrappers or "protocolMessage" in wrappers:
        details["edited"] = True
    if any(w.startswith("viewOnce") for w in wrappers):
        details["view_once"] = True
    return Content(read.message_type, "/".join([*wrappers, kind]), read.text, details or None)


def _context_info(message: dict[str, Any], data: _Data) -> dict[str, Any]:
    """The contextInfo of the innermost content (or Evolution v2's `data.contextInfo`)."""
    _, content, _, _ = unwrap(message)
    if isinstance(content, dict) and isinstance(content.get("contextInfo"), dict):
        return dict(content["contextInfo"])
    extra = data.model_extra or {}
    return dict(extra["contextInfo"]) if isinstance(extra.get("contextInfo"), dict) else {}


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    webhook = _Webhook.model_validate(inbound.body)
    require_known_id(settings, [webhook.instance], "instance")
    if (other := messages.unless_a_message(_event_name(webhook.event), message="messages.upsert",
                                           status="messages.update",
                                           statuses=lambda: statuses.evolution(inbound, webhook.data))) is not None:
        return other
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
    phone = messages.sender_phone(jid, "data.key.remoteJidAlt" if jid != data.key.remoteJid else "data.key.remoteJid")
    message = data.message or {}
    if "protocolMessage" in message and not isinstance(message["protocolMessage"].get("editedMessage"), dict):
        kind = str(message["protocolMessage"].get("type", "protocol message"))
        return Ignored(f"protocol message ({kind}), not words from the lead")
    content = message_content(message)
    if content.message_type == "unknown" and data.messageType and content.raw_type == "unknown":
        content = Content("unknown", data.messageType)
    context = _context_info(message, data)
    return [messages.envelope_for(inbound, messages.message_payload(
        provider=PROVIDER, message_id=data.key.id, phone=phone, chat_id=data.key.remoteJid,
        display_name=data.pushName, content=content, sent_at=messages.epoch(data.messageTimestamp),
        ad=messages.referral(context.get("externalAdReply")),
        status_reply=context.get("remoteJid") == "status@broadcast",
    ))]
