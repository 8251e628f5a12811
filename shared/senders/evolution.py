"""Evolution API: `POST {base}/message/sendText/{instance}` with the `apikey` header, body {number, text}."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.senders.base import SentMessage, post_json


def send(base_url: str, instance: str, api_key: str, number: str, text: str) -> SentMessage:
    answer: Any = post_json(f"{base_url.rstrip('/')}/message/sendText/{quote(instance, safe='')}",
                            {"number": number, "text": text}, {"apikey": api_key}, what="Evolution API")
    key = answer.get("key") if isinstance(answer, dict) else None
    return SentMessage(str(key["id"]) if isinstance(key, dict) and key.get("id") else None)
