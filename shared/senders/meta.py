"""Meta WhatsApp Cloud API: `POST {base}/{version}/{phone_number_id}/messages`, bearer token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.senders.base import SentMessage, post_json


def send(base_url: str, version: str, phone_number_id: str, access_token: str, to: str, text: str) -> SentMessage:
    url = f"{base_url.rstrip('/')}/{version}/{quote(phone_number_id, safe='')}/messages"
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
            "text": {"preview_url": False, "body": text}}
    answer: Any = post_json(url, body, {"Authorization": f"Bearer {access_token}"}, what="WhatsApp Cloud API")
    messages = answer.get("messages") if isinstance(answer, dict) else None
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
    return SentMessage(str(first["id"]) if first.get("id") else None)
