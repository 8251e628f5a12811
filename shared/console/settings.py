"""A tenant's settings as the console shows them to admins, and the assistant simulator.

Sources come from `tenant_sources` (secret NAMES and platform ids; values never leave
Secret Manager). Webhook URLs are the whatsapp/leads function URLs the deployment gives
the console (CONSOLE_WHATSAPP_URL, CONSOLE_LEADS_URL) plus `/<tenant>/<source>`.
The simulator's history travels in the form; each turn is `shared.assistant.simulator.simulate`,
as in `ctower assistant simulate` (the real OpenAI client); nothing is written or sent.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from shared.db import Cursor, rows_as_dicts

if TYPE_CHECKING:
    from shared.assistant.prompt import Turn

MAX_TURNS = 40
MAX_TEXT = 4000


def sources(cur: Cursor, tenant: str) -> list[dict[str, Any]]:
    cur.execute("SELECT channel, source, settings FROM tenant_sources WHERE tenant_id = %s ORDER BY channel, source",
                (tenant,))
    rows = rows_as_dicts(cur)
    for row in rows:
        row["url"] = webhook_url(row["channel"], tenant, row["source"])
        row["secrets"] = sorted(v for k, v in (row["settings"] or {}).items() if k.endswith("secret") and v)
        row["ids"] = list((row["settings"] or {}).get("ids") or [])
    return rows


# Each webhook function's public base URL, set by Terraform (the console's topology `env`).
WEBHOOK_BASE_ENV = {"whatsapp": "CONSOLE_WHATSAPP_URL", "leads": "CONSOLE_LEADS_URL"}


def webhook_url(channel: str, tenant: str, source: str) -> str | None:
    name = WEBHOOK_BASE_ENV.get(channel)
    base = os.environ.get(name) if name else None
    return f"{base.rstrip('/')}/{tenant}/{source}" if base else None


class BadHistory(ValueError):
    """The simulator's conversation field is not what the page sent."""


def parse_history(raw: str) -> tuple[list[Turn], dict[str, Any]]:
    """The conversation so far and the facts known, as the page carries them (JSON in a hidden field)."""
    from shared.assistant.prompt import Turn  # the settings page's simulator only: sellers never load the assistant

    try:
        data = json.loads(raw or '{"turns": [], "known": {}}')
        turns = [Turn(t["role"], str(t["text"])[:MAX_TEXT]) for t in data["turns"] if t["role"] in ("lead", "business")]
        known = dict(data["known"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadHistory(str(exc)) from exc
    if len(turns) > MAX_TURNS:
        raise BadHistory(f"at most {MAX_TURNS} messages per simulation")
    return turns, known


def dump_history(turns: list[Turn], known: dict[str, Any]) -> str:
    return json.dumps({"turns": [{"role": t.role, "text": t.text} for t in turns], "known": known},
                      ensure_ascii=False)
