"""Sending a text to a lead through the tenant's WhatsApp provider, over its real HTTP API.

One module per provider (evolution, zapi, meta); `send_text` picks the one the
conversation came in on. Base URLs are configurable (a local stand-in in tests);
credentials are secret NAMES in the tenant's settings, their values come from
`shared.secrets` (the environment locally, Secret Manager in the cloud).
"""

from __future__ import annotations

from shared.senders.base import SendError, SentMessage
from shared.senders.config import SenderSettings, send_text

__all__ = ["SendError", "SenderSettings", "SentMessage", "send_text"]
