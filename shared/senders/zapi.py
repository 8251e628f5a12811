"""Z-API: `POST {base}/instances/{id}/token/{token}/send-text` with `Client-Token`, body {phone, message}."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.senders.base import SentMessage, post_json


def send(base_url: str, instance_id: str, token: str, client_token: str | None, phone: str,
         text: str) -> SentMessage:
    url = f"{base_url.rstrip('/')}/instances/{quote(instance_id, safe='')}/token/{quote(token, safe='')}/send-text"
    headers = {"Client-Token": client_token} if client_token else {}
    answer: Any = post_json(url, {"phone": phone, "message": text}, headers, what="Z-API")
    message_id = (answer.get("messageId") or answer.get("id")) if isinstance(answer, dict) else None
    return SentMessage(str(message_id) if message_id else None)
