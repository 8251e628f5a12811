"""Meta WhatsApp Cloud API webhooks (also what 360dialog and Gupshup v3 deliver).

`entry[].changes[].value.messages[]`: one POST may carry several entries and several
messages, and each becomes its own envelope. `statuses[]` (sent/delivered/read/failed)
become `message_status` envelopes (shared/sources/statuses.py) when no message came with
them; `contacts[]` give the senders' names. 360dialog's on-premise shape (the `value`
object at the top level) is read the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import Envelope
from shared.inbound import Ignored, Inbound, Outcome
from shared.sources import messages
from shared.sources.messages import Content, pick, text_or_none
from shared.sources.statuses import cloud_api as status_envelopes
from shared.tenants import SourceSettings
from shared.verification import require_known_id

_MEDIA = ("image", "video", "document", "sticker")


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    from_: str = Field(alias="from", min_length=1)
    timestamp: str | int | None = None
    type: str = Field(default="unknown", min_length=1, max_length=200)


class _Value(BaseModel):
    model_config = ConfigDict(extra="allow")
    metadata: dict[str, Any] = Field(default_factory=dict)
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    statuses: list[dict[str, Any]] = Field(default_factory=list)


class _Change(BaseModel):
    model_config = ConfigDict(extra="allow")
    field: str = "messages"
    value: dict[str, Any] = Field(default_factory=dict)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    changes: list[_Change] = Field(default_factory=list)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    object: str | None = None
    entry: list[_Entry] = Field(min_length=1)


_MEDIA_KEYS = ("id", "mime_type", "sha256", "filename", "url", "animated", "voice")


def content(message: dict[str, Any]) -> Content:
    """One row of the table: a Cloud API message `type` to the shared vocabulary."""
    kind = str(message.get("type") or "unknown")
    raw = message.get(kind)
    c: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "text":
        return Content("text", kind, text_or_none(c.get("body")))
    if kind == "audio":
        voice = "voice" if c.get("voice") else "audio"
        return Content(voice, kind, None, pick(c, _MEDIA_KEYS, kind=voice))
    if kind in _MEDIA:
        return Content(kind, kind, text_or_none(c.get("caption")), pick(c, _MEDIA_KEYS, kind=kind))
    if kind == "location":
        return Content("location", kind, text_or_none(c.get("name")) or text_or_none(c.get("address")),
                       pick(c, ("latitude", "longitude", "name", "address", "url")))
    if kind == "contacts":
        contacts = raw if isinstance(raw, list) else []
        names = [str((x.get("name") or {}).get("formatted_name")) for x in contacts
                 if isinstance(x, dict) and isinstance(x.get("name"), dict) and x["name"].get("formatted_name")]
        phones = [p.get("wa_id") or p.get("phone") for x in contacts if isinstance(x, dict)
                  for p in x.get("phones") or [] if isinstance(p, dict)]
        return Content("contacts", kind, ", ".join(names) or None, pick({}, (), names=names, phones=phones))
    if kind == "reaction":
        return Content("reaction", kind, text_or_none(c.get("emoji")), pick(c, ("message_id",)))
    if kind == "interactive":
        reply_kind = str(c.get("type") or "")
        reply: dict[str, Any] = c[reply_kind] if isinstance(c.get(reply_kind), dict) else {}
        if reply_kind == "nfm_reply":  # a WhatsApp Flow's answers
            return Content("interactive_reply", f"{kind}/{reply_kind}", text_or_none(reply.get("body")),
                           pick(reply, ("name", "response_json"), reply_kind=reply_kind))
        return Content("interactive_reply", f"{kind}/{reply_kind}" if reply_kind else kind,
                       text_or_none(reply.get("title")), pick(reply, ("id", "description"), reply_kind=reply_kind))
    if kind == "button":  # a template's quick-reply button
        return Content("interactive_reply", kind, text_or_none(c.get("text")), pick(c, ("payload",)))
    if kind == "order":
        return Content("order", kind, text_or_none(c.get("text")), pick(c, ("catalog_id", "product_items")))
    errors = message.get("errors")
    return Content("unknown", kind, None, pick({"errors": errors}, ("errors",)))


def _names(contacts: list[dict[str, Any]]) -> dict[str, str | None]:
    names: dict[str, str | None] = {}
    for contact in contacts:
        profile = contact.get("profile") if isinstance(contact, dict) else None
        if isinstance(profile, dict):
            names[str(contact.get("wa_id"))] = text_or_none(profile.get("name"))
    return names


def _values(body: Any) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """(path of the value, value, entry id) for every `messages` change."""
    if isinstance(body, dict) and "entry" not in body and ("messages" in body or "statuses" in body):
        yield "", body, None  # 360dialog on-premise: the value itself
        return
    webhook = _Webhook.model_validate(body)
    for e, entry in enumerate(webhook.entry):
        for c, change in enumerate(entry.changes):
            if change.field == "messages":
                yield f"entry.{e}.changes.{c}.value.", change.value, entry.id


def adapter(provider: str) -> Callable[[Inbound, SourceSettings | None], Outcome]:
    """The Cloud API adapter, naming the messages after the provider that delivered them."""

    def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
        envelopes: list[Envelope] = []
        system: list[str] = []
        statuses = 0
        for path, raw_value, entry_id in _values(inbound.body):
            value = messages.validate_part(_Value, raw_value, path)
            require_known_id(settings, [str(value.metadata.get("phone_number_id") or entry_id or "")],
                                 f"{path}metadata.phone_number_id")
            statuses += len(value.statuses)
            names = _names(value.contacts)
            for m, raw_message in enumerate(value.messages):
                message = messages.validate_part(_Message, raw_message, f"{path}messages.{m}.")
                if message.type == "system":  # e.g. the customer changed number: not their words
                    system.append(str((raw_message.get("system") or {}).get("type") or "system"))
                    continue
                phone = messages.sender_phone(message.from_, f"{path}messages.{m}.from")
                envelopes.append(messages.envelope_for(inbound, messages.message_payload(
                    provider=provider, message_id=message.id, phone=phone, chat_id=message.from_,
                    display_name=names.get(message.from_), content=content(raw_message),
                    sent_at=messages.epoch(message.timestamp), ad=messages.referral(raw_message.get("referral")),
                )))
        if envelopes:
            return envelopes
        if statuses:
            return status_envelopes(provider, inbound, (v for _, v, _ in _values(inbound.body)))
        if system:
            return Ignored(f"system message ({', '.join(system)}), not words from the lead")
        return Ignored("no message in the webhook")

    return adapt
