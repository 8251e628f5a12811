"""Limits per tenant (`tenant_limits`, defaults when a tenant has no row) and outbound pacing.

Over a limit nothing is lost: the writers record every event whatever the limits say; the
assistant checks `exceeded` before it answers and stays silent, and its log line (event_status
"over_limit") is what the alert counts. Sends are paced per sending number: each send takes the
next free slot of its number (one Postgres row, so every instance shares it) and waits for it,
so a burst queues instead of tripping the provider's own limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.db import Database
from shared.senders.base import SendError

MAX_PACING_WAIT_SECONDS = 30.0  # longer than this: raise, and Pub/Sub brings the send back later
_TODAY_START = "(date_trunc('day', now() AT TIME ZONE 'America/Sao_Paulo') AT TIME ZONE 'America/Sao_Paulo')"


@dataclass(frozen=True)
class Limits:
    messages_per_minute: int = 500
    new_leads_per_day: int = 2000
    assistant_calls_per_day: int | None = None  # None: the tenant's settings.json daily_budget
    assistant_tokens_per_day: int | None = None
    sends_per_minute_per_number: int = 30


class PacingBusy(SendError):
    """The sending number's queue is longer than a push may wait; Pub/Sub retries the send later."""


def limits_for(db: Database, tenant: str) -> Limits:
    with db.transaction() as cur:
        cur.execute("SELECT messages_per_minute, new_leads_per_day, assistant_calls_per_day, "
                    "assistant_tokens_per_day, sends_per_minute_per_number FROM tenant_limits WHERE tenant_id = %s",
                    (tenant,))
        row = cur.fetchone()
    return Limits(*row) if row else Limits()


def exceeded(db: Database, tenant: str, limits: Limits) -> str | None:
    """The first limit the tenant is over right now (e.g. "messages_per_minute 612/500"), or None."""
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM messages WHERE tenant_id = %s AND direction = 'inbound' "
                    "AND created_at > now() - interval '1 minute'", (tenant,))
        messages = int(cur.fetchone()[0])
        if messages > limits.messages_per_minute:
            return f"messages_per_minute {messages}/{limits.messages_per_minute}"
        cur.execute(f"SELECT count(*) FROM leads WHERE tenant_id = %s AND created_at >= {_TODAY_START}",  # noqa: S608
                    (tenant,))
        leads = int(cur.fetchone()[0])
        if leads > limits.new_leads_per_day:
            return f"new_leads_per_day {leads}/{limits.new_leads_per_day}"
    return None


def pace(db: Database, sender: str, per_minute: int, sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait for `sender`'s next send slot; returns the seconds waited. PacingBusy when the queue is too long."""
    gap = 60.0 / per_minute
    with db.transaction() as cur:
        cur.execute("INSERT INTO send_pacing (sender, next_slot) VALUES (%s, now() + make_interval(secs => %s)) "
                    "ON CONFLICT (sender) DO UPDATE SET next_slot = GREATEST(send_pacing.next_slot, now()) "
                    "+ make_interval(secs => %s) WHERE GREATEST(send_pacing.next_slot, now()) "
                    "< now() + make_interval(secs => %s) "
                    "RETURNING EXTRACT(EPOCH FROM (next_slot - now()))::float8 - %s",
                    (sender, gap, gap, MAX_PACING_WAIT_SECONDS, gap))
        row = cur.fetchone()
    if row is None:
        raise PacingBusy(f"{sender}: more than {MAX_PACING_WAIT_SECONDS:.0f}s of sends queued")
    wait = max(0.0, float(row[0]))
    if wait:
        sleep(wait)
    return wait
