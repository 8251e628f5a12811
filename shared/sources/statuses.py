"""Delivery statuses from every WhatsApp provider -> `message_status` envelopes (pure, no I/O).

Each provider adapter hands its status payload here at the one place it used to drop it.
Provider words are mapped onto four states: sent, delivered, read, failed (with the
provider's reason). A status that says nothing new about delivery (queued, pending, the
business reading the lead's message) gives no envelope. The event id is derived from
(provider, message id, status), so a repeated callback is written once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.envelope import Envelope, build_envelope
from shared.inbound import Ignored, Inbound, Outcome
from shared.payloads import MessageStatus
from shared.sources.messages import epoch, text_or_none

# Evolution (Baileys acks, by name or number), Z-API and Gupshup words -> our states.
_EVOLUTION = {"SERVER_ACK": "sent", "DELIVERY_ACK": "delivered", "READ": "read", "PLAYED": "read", "ERROR": "failed",
              "2": "sent", "3": "delivered", "4": "read", "5": "read", "0": "failed"}
_ZAPI = {"SENT": "sent", "RECEIVED": "delivered", "READ": "read", "PLAYED": "read"}
_GUPSHUP = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
_CLOUD = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _envelope(inbound: Inbound, status: MessageStatus) -> Envelope:
    return build_envelope(event_type="message_status", payload=status, tenant=inbound.tenant,
                          source=status.provider, correlation_id=inbound.correlation_id,
                          source_id=f"{status.provider_message_id}:{status.status}",
                          occurred_at=status.occurred_at)


def _outcome(inbound: Inbound, statuses: Iterable[MessageStatus], what: str) -> Outcome:
    envelopes = [_envelope(inbound, s) for s in statuses]
    return envelopes or Ignored(f"{what}: no delivery state we track")


def _digits(recipient: Any) -> str | None:
    """The lead's number from a JID or a bare number; None for a group, an @lid or nothing."""
    text = text_or_none(recipient)
    if text is None or ("@" in text and not text.endswith("@s.whatsapp.net") and not text.endswith("@c.us")):
        return None
    digits = re.sub(r"\D", "", text.split("@", 1)[0])
    return digits if 6 <= len(digits) <= 20 else None


def _status(provider: str, message_id: Any, state: str | None, occurred_at: datetime | None, recipient: Any,
            reason: str | None = None, callback_ref: Any = None) -> MessageStatus | None:
    message_id = text_or_none(message_id)
    if state is None or message_id is None:
        return None
    return MessageStatus(provider=provider, provider_message_id=message_id[:200], status=state,
                         reason=(reason or None) and reason[:1000], callback_ref=text_or_none(callback_ref),
                         recipient=_digits(recipient), occurred_at=occurred_at)


def evolution(inbound: Inbound, data: Any) -> Outcome:
    """`messages.update`: v2 sends {keyId, status, fromMe}; v1 a list of {key: {id}, update: {status}}."""
    items = data if isinstance(data, list) else [data]
    found: list[MessageStatus] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        key, update = _dict(item.get("key")), _dict(item.get("update"))
        if (item.get("fromMe", key.get("fromMe")) is False):
            continue  # the business reading the lead's message
        raw = str(item.get("status", update.get("status", ""))).upper()
        status = _status("evolution", item.get("keyId") or key.get("id"), _EVOLUTION.get(raw),
                         epoch(item.get("messageTimestamp")), item.get("remoteJid") or key.get("remoteJid"))
        if status:
            found.append(status)
    return _outcome(inbound, found, "messages.update")


def zapi(inbound: Inbound) -> Outcome:
    """`MessageStatusCallback`: {status, ids[], momment (ms)}; READ_BY_ME is the business reading."""
    body = _dict(inbound.body)
    state = _ZAPI.get(str(body.get("status", "")).upper())
    ids = _list(body.get("ids"))
    at = epoch(body.get("momment"), millis=True)
    found = filter(None, (_status("zapi", i, state, at, body.get("phone")) for i in ids))
    return _outcome(inbound, found, "MessageStatusCallback")


def gupshup(inbound: Inbound) -> Outcome:
    """`message-event`: payload {id, gsId, type: enqueued|sent|delivered|read|failed, payload: {reason, ts}}.

    The send API's messageId is the Gupshup id (`gsId` on later events, `id` on enqueued/failed).
    """
    body = _dict(inbound.body)
    event = _dict(body.get("payload"))
    detail = _dict(event.get("payload"))
    status = _status("gupshup", event.get("gsId") or event.get("id"), _GUPSHUP.get(str(event.get("type"))),
                     epoch(detail.get("ts")) or epoch(body.get("timestamp"), millis=True), event.get("destination"),
                     text_or_none(detail.get("reason")) or text_or_none(str(detail.get("code") or "")))
    return _outcome(inbound, [status] if status else [], "message-event")


def cloud_api(provider: str, inbound: Inbound, values: Iterable[dict[str, Any]]) -> Outcome:
    """Cloud API (Meta, 360dialog) `statuses[]`: {id, status, timestamp, errors[], biz_opaque_callback_data}."""
    found: list[MessageStatus] = []
    for value in values:
        for raw in map(_dict, _list(value.get("statuses"))):
            errors = _list(raw.get("errors"))
            reason = "; ".join(_cloud_error(e) for e in errors if isinstance(e, dict)) or None
            status = _status(provider, raw.get("id"), _CLOUD.get(str(raw.get("status"))), epoch(raw.get("timestamp")),
                             raw.get("recipient_id"), reason, raw.get("biz_opaque_callback_data"))
            if status:
                found.append(status)
    return _outcome(inbound, found, "statuses")


def _cloud_error(error: dict[str, Any]) -> str:
    details = _dict(error.get("error_data")).get("details")
    words = " - ".join(str(w) for w in (error.get("title") or error.get("message"), details) if w)
    return f"{error.get('code')}: {words}" if error.get("code") is not None else words
