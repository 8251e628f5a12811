"""Push deliveries that stopped being retried, and the seek that restarts them.

Cloud Pub/Sub redelivers a failed push with backoff until the dead-letter policy takes it.
The emulator (0.8.x) can stall instead: after several failed pushes at once (a database
outage, a writer restarting) it stops redelivering them and never resumes, while new
messages still flow. Nothing shows it — no metric, and a pull would spend an attempt.

The local stack reads every writer's log lines (it already prints them) into a
`DeliveryWatch`: an event whose delivery failed and that has neither been processed since
nor retried within `stall_after` seconds is stalled on its subscription. The stack writes
what it sees to `.local/deliveries.json` (what `ctower status` shows) and seeks the stalled
subscriptions, which is `ctower subscriptions seek` done for the operator. A seek to a time
before every message still held marks them all for redelivery now; messages already
acknowledged are not kept, so nothing is delivered twice that the writers have not already
made idempotent, and dead letters are untouched.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.topology import Topology

_FAILED = {"failed", "failed_again"}
_DONE = {"processed", "duplicate", "superseded"}


@dataclass
class _Pending:
    subscription: str
    first_failed: float
    last_seen: float
    failures: int = 1


@dataclass
class DeliveryWatch:
    """Failed deliveries per event, from the subscriber functions' JSON log lines."""

    topology: Topology
    stall_after: float
    max_attempts: int = 5  # a delivery that failed this often has been dead-lettered: not waiting any more
    pending: dict[str, _Pending] = field(default_factory=dict)  # event_id -> its failed delivery
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, function: str, line: str, now: float | None = None) -> None:
        """One line a function printed; only subscriber outcomes with an event id matter."""
        if '"event_status"' not in line or not line.startswith("{"):
            return
        try:
            entry = json.loads(line)
        except ValueError:
            return
        status, event_id, event_type = entry.get("event_status"), entry.get("event_id"), entry.get("event_type")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            return
        now = time.time() if now is None else now
        with self._lock:
            if status in _DONE:
                self.pending.pop(event_id, None)
            elif status in _FAILED:
                known = self.pending.get(event_id)
                if known is not None:
                    known.last_seen, known.failures = now, known.failures + 1
                    if known.failures >= self.max_attempts:
                        del self.pending[event_id]
                    return
                subscription = self._subscription(function, event_type)
                if subscription is not None:
                    self.pending[event_id] = _Pending(subscription, now, now)

    def _subscription(self, function: str, event_type: str) -> str | None:
        et = self.topology.event_types.get(event_type)
        if et is None:
            return None
        return next((name for name, fn in et.subscriptions.items() if fn == function), None)

    def stalled(self, now: float | None = None) -> dict[str, list[str]]:
        """Subscription -> event ids failed and not retried for `stall_after` seconds."""
        now = time.time() if now is None else now
        found: dict[str, list[str]] = {}
        with self._lock:
            for event_id, p in self.pending.items():
                if now - p.last_seen >= self.stall_after:
                    found.setdefault(p.subscription, []).append(event_id)
        return found

    def restarted(self, subscriptions: set[str], now: float | None = None) -> None:
        """After a seek: give those deliveries a fresh stall window."""
        now = time.time() if now is None else now
        with self._lock:
            for p in self.pending.values():
                if p.subscription in subscriptions:
                    p.last_seen = now

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """What `ctower status` reads: per subscription, failed deliveries waiting and how long the oldest waits."""
        now = time.time() if now is None else now
        subs: dict[str, dict[str, Any]] = {}
        with self._lock:
            for p in self.pending.values():
                row = subs.setdefault(p.subscription, {"waiting": 0, "stalled": 0, "oldest_failed_seconds": 0.0})
                row["waiting"] += 1
                row["stalled"] += int(now - p.last_seen >= self.stall_after)
                row["oldest_failed_seconds"] = max(row["oldest_failed_seconds"], round(now - p.first_failed, 1))
        return {"written_at": now, "stall_after_seconds": self.stall_after, "subscriptions": subs}

    def write(self, path: Path, now: float | None = None) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(now), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def read_snapshot(path: Path) -> dict[str, Any] | None:
    """The local stack's last snapshot, or None (no stack, or the cloud)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def seek(subscriber: Any, project: str, subscriptions: list[str], to_epoch: float) -> list[str]:
    """Mark every message each subscription still holds, published since `to_epoch`, for redelivery now.

    Messages published before `to_epoch` would be marked acknowledged: give a time before the
    oldest message you need (the local stack's start; in the cloud, the retention window).
    """
    from google.protobuf import timestamp_pb2

    moment = timestamp_pb2.Timestamp()
    moment.FromSeconds(int(to_epoch))
    for name in subscriptions:
        subscriber.seek(request={"subscription": subscriber.subscription_path(project, name), "time": moment},
                        timeout=30)
    return subscriptions
