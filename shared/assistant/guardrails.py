"""Checks on what the model wrote before it reaches a lead.

The model is told to answer only from the tenant's facts; this makes the most costly
slip, an invented price, impossible to send: any money amount in the reply that the
facts file or the products shown for this turn do not contain replaces the reply with the
tenant's safe text.
"""

from __future__ import annotations

import re

from shared.assistant.config import TenantAssistant
from shared.assistant.schema import MAX_REPLY_CHARS

_AMOUNT = re.compile(r"(?:R\$|US\$|\$)\s*\d[\d.,]*|\d[\d.,]*\s*(?:reais|real)\b", re.IGNORECASE)


def _digits(text: str) -> str:
    return re.sub(r"[^\d]", "", text)


def unsupported_amounts(reply: str, facts: str) -> list[str]:
    """Money amounts in `reply` whose digits do not appear in any amount of `facts`."""
    known = {_digits(m) for m in _AMOUNT.findall(facts)}
    return [m for m in _AMOUNT.findall(reply) if _digits(m) not in known]


def safe_reply(reply: str, config: TenantAssistant, catalog: str = "") -> tuple[str, str | None]:
    """(text to send, why it was changed or None); `catalog` is the products section the model was shown."""
    reply = reply.strip()
    if not reply:
        return config.fallback, "empty reply"
    invented = unsupported_amounts(reply, f"{config.facts}\n{catalog}")
    if invented:
        return config.settings.unsupported_amount_reply, f"amount not in the tenant's facts or catalog: {invented}"
    if len(reply) > MAX_REPLY_CHARS:
        return reply[:MAX_REPLY_CHARS].rsplit(" ", 1)[0] + "…", "reply too long"
    return reply, None
