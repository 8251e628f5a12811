"""Meta WhatsApp Cloud API webhooks (also what 360dialog and Gupshup v3 deliver).

`entry[].changes[].value.messages[]`: one POST may carry several entries and several
messages, and each becomes its own envelope. `statuses[]` (sent/delivered/read) are not
messages; `contacts[]` give the senders' names. 360dialog's on-premise shape (the
`value` object at the top level) is read the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.edge import Ignored, Inbound, Outcome
from shared.envelope import Envelope
from shared.payloads import MessageReceived
from shared.sources.messages import envelope_for, epoch, sender_phone, text_or_none, validate_part
from shared.sources.statuses import cloud_api as status_envelopes
from shared.tenants import SourceSettings
from shared.verification import require_known_id

_MEDIA = ("image", "video", "document", "audio", "sticker")


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


def _text(message: dict[str, Any]) -> str | None:
    kind = message.get("type")
    content = message.get(kind) if isinstance(kind, str) else None
    if not isinstance(content, dict):
        return None
    if kind == "text":
        return text_or_none(content.get("body"))
    if kind in _MEDIA:
        return text_or_none(content.get("caption"))
    if kind == "interactive":  # button_reply / list_reply: the option the person chose
        reply = content.get(str(content.get("type")))
        return text_or_none(reply.get("title")) if isinstance(reply, dict) else None
    if kind == "button":  # a template's quick-reply button
        return text_or_none(content.get("text"))
    if kind == "reaction":
        return text_or_none(content.get("emoji"))
    if kind == "location":
        return text_or_none(content.get("name")) or text_or_none(content.get("address"))
    return None


def _media(message: dict[str, Any]) -> dict[str, Any] | None:
    kind = message.get("type")
    content = message.get(kind) if isinstance(kind, str) else None
    if kind not in _MEDIA or not isinstance(content, dict):
        return None
    return {"kind": kind, **{k: content[k] for k in ("id", "mime_type", "sha256", "filename", "url")
                             if k in content}}


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
        statuses = 0
        for path, raw_value, entry_id in _values(inbound.body):
            value = validate_part(_Value, raw_value, path)
            if settings is not None:
                require_known_id(settings.ids, [str(value.metadata.get("phone_number_id") or entry_id or "")],
                                 f"{path}metadata.phone_number_id")
            statuses += len(value.statuses)
            names = _names(value.contacts)
            for m, raw_message in enumerate(value.messages):
                message = validate_part(_Message, raw_message, f"{path}messages.{m}.")
                if message.type == "system":  # e.g. the customer changed number: not their words
                    continue
                phone = sender_phone(message.from_, f"{path}messages.{m}.from")
                sent_at = epoch(message.timestamp)
                envelopes.append(envelope_for(inbound, MessageReceived(
                    provider=provider,
                    provider_message_id=message.id,
                    phone=phone,
                    chat_id=message.from_,
                    display_name=names.get(message.from_),
                    text=_text(raw_message),
                    message_type=message.type,
                    media=_media(raw_message),
                    sent_at=sent_at,
                )))
        if envelopes:
            return envelopes
        if statuses:
            return status_envelopes(provider, inbound, (v for _, v, _ in _values(inbound.body)))
        return Ignored("no message in the webhook")

    return adapt
