"""Meta WhatsApp Cloud API: `POST {base}/{version}/{phone_number_id}/messages`, bearer token.

`biz_opaque_callback_data` (our outbox reference) is echoed in the status webhooks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.senders.base import SentMessage, post_json


def text_body(to: str, text: str, callback_ref: str) -> dict[str, Any]:
    """A Cloud API text message (Meta's and 360dialog's shape)."""
    return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"preview_url": False, "body": text}, "biz_opaque_callback_data": callback_ref}


def first_message_id(answer: Any) -> str | None:
    messages = answer.get("messages") if isinstance(answer, dict) else None
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
    return str(first["id"]) if first.get("id") else None


def send(base_url: str, version: str, phone_number_id: str, access_token: str, to: str, text: str,
         callback_ref: str) -> SentMessage:
    url = f"{base_url.rstrip('/')}/{version}/{quote(phone_number_id, safe='')}/messages"
    answer: Any = post_json(url, text_body(to, text, callback_ref), {"Authorization": f"Bearer {access_token}"},
                            what="WhatsApp Cloud API")
    return SentMessage(first_message_id(answer))
