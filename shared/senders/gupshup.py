"""Gupshup: `POST {base}/wa/api/v1/msg`, form-encoded, `apikey` header.

Fields: channel=whatsapp, source (the business number), destination, src.name (the app)
and message (JSON: {"type": "text", "text": ...}). The answer is
{"status": "submitted", "messageId": ...}; that id comes back in `message-event` callbacks.
"""

from __future__ import annotations

import json
from typing import Any

from shared.senders.base import SendError, SentMessage, post_form


def send(base_url: str, api_key: str, source: str, app_name: str, destination: str, text: str) -> SentMessage:
    fields = {"channel": "whatsapp", "source": source, "destination": destination, "src.name": app_name,
              "message": json.dumps({"type": "text", "text": text}, ensure_ascii=False)}
    answer: Any = post_form(f"{base_url.rstrip('/')}/wa/api/v1/msg", fields, {"apikey": api_key}, what="Gupshup API")
    if isinstance(answer, dict) and answer.get("status") not in (None, "submitted"):
        raise SendError(f"Gupshup API did not submit the message: {str(answer)[:300]}")
    message_id = answer.get("messageId") if isinstance(answer, dict) else None
    return SentMessage(str(message_id) if message_id else None)
