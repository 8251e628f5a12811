"""360dialog (WhatsApp Cloud API hosted by 360dialog): `POST {base}/messages` with the `D360-API-KEY` header.

The body is the Cloud API's; `biz_opaque_callback_data` comes back in the message's
status webhooks, which is how the outbox recognises a send whose answer was lost.
"""

from __future__ import annotations

from typing import Any

from shared.senders.base import SentMessage, post_json
from shared.senders.meta import first_message_id, text_body


def send(base_url: str, api_key: str, to: str, text: str, callback_ref: str) -> SentMessage:
    answer: Any = post_json(f"{base_url.rstrip('/')}/messages", text_body(to, text, callback_ref),
                            {"D360-API-KEY": api_key}, what="360dialog API")
    return SentMessage(first_message_id(answer))
