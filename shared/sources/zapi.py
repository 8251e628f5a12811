"""Z-API webhooks (`ReceivedCallback`) to `message_received` envelopes.

Z-API posts every kind of callback to its URLs; only a `ReceivedCallback` from a person
(not `fromMe`, a group, a newsletter, a broadcast or a notification) is a message. A
lead's reply to the business's status is one, marked `status_reply`. `momment` is in
milliseconds. `MessageStatusCallback` (delivery statuses) goes to shared/sources/statuses.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.inbound import Ignored, Inbound, Outcome
from shared.sources import messages, statuses
from shared.sources.messages import Content, pick, text_or_none
from shared.tenants import SourceSettings
from shared.verification import require_known_id

PROVIDER = "zapi"
# Z-API content object -> (vocabulary, fields with the words in order, metadata kept); checked in this order.
_KINDS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("text", "text", ("message",), ("title", "description", "url")),
    ("image", "image", ("caption",), ("imageUrl", "mimeType", "width", "height", "viewOnce")),
    ("video", "video", ("caption",), ("videoUrl", "mimeType", "seconds", "viewOnce")),
    ("document", "document", ("caption", "title", "fileName"), ("documentUrl", "mimeType", "fileName", "pageCount")),
    ("audio", "audio", (), ("audioUrl", "mimeType", "seconds", "ptt", "viewOnce")),
    ("sticker", "sticker", (), ("stickerUrl", "mimeType", "isAnimated")),
    ("location", "location", ("name", "address"), ("latitude", "longitude", "name", "address", "url")),
    ("contact", "contacts", ("displayName",), ("displayName", "vCard", "phones")),
    ("reaction", "reaction", ("value",), ("referencedMessage",)),
    ("buttonsResponseMessage", "interactive_reply", ("message",), ("buttonId",)),
    # The chosen row: `title` is its title, `message` its description (Z-API's documented example).
    ("listResponseMessage", "interactive_reply", ("title", "message"), ("selectedRowId", "message")),
    ("pollVote", "interactive_reply", (), ("pollMessageId", "options")),
    ("hydratedTemplate", "template", ("message", "title"), ("title", "footer", "templateId", "hydratedButtons")),
    ("buttonsMessage", "template", ("message",), ("buttons",)),
    ("carouselMessage", "template", ("text",), ("cards",)),
    ("order", "order", ("message", "orderTitle"), ("orderId", "orderTitle", "itemCount", "currency", "total",
                                                    "products")),
    ("product", "order", ("title", "description"), ("productId", "title", "price", "currencyCode", "retailerId")),
)
# Kinds Z-API documents that are not in the vocabulary: kept as `unknown` with their name and words.
_OTHER = ("poll", "pixKeyMessage", "event", "eventResponse", "requestPayment", "sendPayment", "reviewAndPay",
          "reviewOrder", "pinMessage", "newsletterAdminInvite")


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


def content(callback: dict[str, Any]) -> Content:
    """One row of the table: whichever content object the callback carries, in the shared vocabulary."""
    for kind, vocabulary, text_fields, kept in _KINDS:
        c = callback.get(kind)
        if not isinstance(c, dict):
            continue
        if kind == "audio" and c.get("ptt"):
            vocabulary = "voice"
        text = next((str(c[f]) for f in text_fields if text_or_none(c.get(f))), None)
        if kind == "pollVote":
            text = ", ".join(str(o.get("name")) for o in c.get("options") or [] if isinstance(o, dict)) or None
        return Content(vocabulary, kind, text, pick(c, kept, kind=vocabulary if kind in _MEDIA else None,
                                                    edited=callback.get("isEdit")))
    for kind in _OTHER:
        c = callback.get(kind)
        if isinstance(c, dict):
            text = next((str(c[f]) for f in ("question", "name", "text", "response") if text_or_none(c.get(f))), None)
            return Content("unknown", kind, text)
    return Content("unknown", "waitingMessage" if callback.get("waitingMessage") else "unknown")


_MEDIA = ("image", "video", "document", "audio", "sticker")


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    callback = _Callback.model_validate(inbound.body)
    require_known_id(settings, [callback.instanceId], "instanceId")
    if (other := messages.unless_a_message(callback.type, message="ReceivedCallback", status="MessageStatusCallback",
                                           statuses=lambda: statuses.zapi(inbound))) is not None:
        return other
    if callback.fromMe:
        return Ignored("own message (fromMe)")
    if callback.isGroup or (callback.phone or "").endswith("-group"):
        return Ignored("group chat")
    if callback.isNewsletter or callback.broadcast:
        return Ignored("newsletter or broadcast")
    if callback.notification:
        return Ignored(f"notification {callback.notification}, not a message")
    if not callback.messageId:
        return Ignored("callback without a messageId")
    if (callback.phone or "").endswith("@lid"):
        return Ignored("@lid sender without a phone")
    phone = messages.sender_phone(callback.phone, "phone")
    body = inbound.body if isinstance(inbound.body, dict) else {}
    return [messages.envelope_for(inbound, messages.message_payload(
        provider=PROVIDER, message_id=callback.messageId, phone=phone, chat_id=str(callback.phone),
        display_name=text_or_none(callback.senderName) or text_or_none(callback.chatName),
        content=content(body), sent_at=messages.epoch(callback.momment, millis=True),
        ad=messages.referral(body.get("externalAdReply")), status_reply=callback.isStatusReply,
    ))]
