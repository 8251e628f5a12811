"""End to end: webhook sent -> its event committed in Postgres, p50/p99, on the local stack.

Webhooks go out paced (open loop, below saturation) so the figure is the pipeline's
latency, not a queue's. A watcher polls `events` every POLL_SECONDS for newly committed
rows and stamps when each correlation id first shows up (so figures carry up to that
much polling granularity). Shown beside the 202 latency of the same requests.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ops.stack import Stack
from shared.db import Database
from tests.traffic import load
from tests.traffic.sources import SOURCES, request_for
from tests.traffic.stats import percentile

POLL_SECONDS = 0.01


@dataclass(frozen=True)
class EndToEndFigure:
    sent: int
    accepted: int
    committed: int
    p50_ms: float
    p99_ms: float
    accept_p50_ms: float
    accept_p99_ms: float


class CommitWatcher:
    """Polls `events` for committed rows; first time seen per correlation id (time.monotonic())."""

    def __init__(self, database_url: str) -> None:
        self.db = Database.for_url(database_url, size=1)
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._last_id = 0
        self._thread = threading.Thread(target=self._loop, name="commit-watcher", daemon=True)

    def __enter__(self) -> CommitWatcher:
        with self.db.transaction() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM events")
            self._last_id = int(cur.fetchone()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.db.close()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            with self.db.transaction() as cur:
                # Every row since the start, each time: ids are handed out at insert, not at commit,
                # so a high-water mark on id would skip rows that commit out of order.
                cur.execute("SELECT correlation_id FROM events WHERE id > %s AND status = 'processed'",
                            (self._last_id,))
                rows = cur.fetchall()
            now = time.monotonic()
            for (correlation_id,) in rows:
                self.seen.setdefault(str(correlation_id), now)

    def wait_for(self, correlation_ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not correlation_ids <= self.seen.keys():
            time.sleep(0.05)


def measure(stack: Stack, tenant: str, count: int = 200, pace_per_second: float = 20.0) -> EndToEndFigure:
    picked = [s for s in SOURCES if s.event_type in ("message_received", "lead_created")]
    requests = [request_for(picked[i % len(picked)].build(100_000 + i, tenant), stack.function_urls, "e2e")
                for i in range(count)]
    assert stack.database_url
    warm = [request_for(picked[i % len(picked)].build(90_000 + i, tenant), stack.function_urls, "warm")
            for i in range(20)]  # every instance imported and connected before the clock runs
    load.run(warm, concurrency=4, max_seconds=60)
    time.sleep(2)
    with CommitWatcher(stack.database_url) as watcher:
        result = load.run(requests, concurrency=4, max_seconds=count / pace_per_second + 30,
                          pace_per_second=pace_per_second)
        accepted = {str(a.body.get("correlation_id")): a for a in result.ok}
        watcher.wait_for(set(accepted), timeout=60)
        latencies = [watcher.seen[cid] - a.sent_at for cid, a in accepted.items() if cid in watcher.seen]
    return EndToEndFigure(len(requests), len(accepted), len(latencies), percentile(latencies, 50) * 1000,
                          percentile(latencies, 99) * 1000, result.latency(50) * 1000, result.latency(99) * 1000)
