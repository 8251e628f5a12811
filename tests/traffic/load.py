"""A bounded HTTP load generator: threads, each with its own keep-alive http.client connection.

Bounded in count (the request list) and in time (`max_seconds`); loopback only. Each
answer is kept (status, latency, the ids the edge returned) for the caller to check.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

from tests.traffic.stats import percentile


@dataclass(frozen=True)
class Request:
    url: str  # http://127.0.0.1:PORT/path
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    label: str = ""


@dataclass
class Answer:
    index: int
    label: str
    status: int  # 0: no answer (connection error)
    latency: float  # seconds, send to full response
    sent_at: float  # time.monotonic() when sent
    body: dict[str, object] = field(default_factory=dict)
    retry_after: str | None = None
    error: str = ""


@dataclass
class LoadResult:
    answers: list[Answer]
    elapsed: float
    asked: int

    @property
    def ok(self) -> list[Answer]:
        return [a for a in self.answers if 200 <= a.status < 300]

    @property
    def rps(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed else 0.0

    def latency(self, pct: float) -> float:
        return percentile([a.latency for a in self.ok], pct)

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for answer in self.answers:
            counts[answer.status] = counts.get(answer.status, 0) + 1
        return counts


def _loopback(url: str) -> tuple[str, int, str]:
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"load only goes to loopback, not {parsed.hostname}")
    return parsed.hostname, int(parsed.port or 80), (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")


def run(requests: Sequence[Request], *, concurrency: int, max_seconds: float,
        pace_per_second: float | None = None, timeout: float = 30.0) -> LoadResult:
    """Send every request once (or until `max_seconds`), `concurrency` at a time.

    With `pace_per_second`, request i is not sent before start + i / pace (open-loop pacing,
    for latency measurements that should not measure the queue).
    """
    answers: list[Answer] = []
    lock = threading.Lock()
    next_index = [0]
    start = time.monotonic()
    deadline = start + max_seconds

    def take() -> int | None:
        with lock:
            i = next_index[0]
            if i >= len(requests) or time.monotonic() >= deadline:
                return None
            next_index[0] += 1
            return i

    def worker() -> None:
        connections: dict[tuple[str, int], http.client.HTTPConnection] = {}
        try:
            while (i := take()) is not None:
                if pace_per_second:
                    delay = start + i / pace_per_second - time.monotonic()
                    if delay > 0:
                        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                answer = _send(i, requests[i], connections, timeout)
                with lock:
                    answers.append(answer)
        finally:
            for conn in connections.values():
                conn.close()

    threads = [threading.Thread(target=worker, name=f"load-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic()) + timeout + 5)
    elapsed = time.monotonic() - start
    with lock:
        done = sorted(answers, key=lambda a: a.index)
    return LoadResult(done, elapsed, len(requests))


def _send(index: int, request: Request, connections: dict[tuple[str, int], http.client.HTTPConnection],
          timeout: float) -> Answer:
    host, port, path = _loopback(request.url)
    for attempt in (1, 2):
        reused = (host, port) in connections
        conn = connections.get((host, port))
        if conn is None:
            conn = connections[(host, port)] = http.client.HTTPConnection(host, port, timeout=timeout)
        sent = time.monotonic()
        try:
            conn.request("POST", path, body=request.body, headers={"Content-Type": "application/json",
                                                                    **request.headers})
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            connections.pop((host, port), None)
            # gunicorn closes an idle keep-alive connection after 2 s; a request that meets that close
            # was never read, so it is sent again once on a fresh connection (as HTTP clients do).
            stale = reused and isinstance(exc, (BrokenPipeError, ConnectionResetError,
                                                http.client.RemoteDisconnected))
            if stale and attempt == 1:
                continue
            return Answer(index, request.label, 0, time.monotonic() - sent, sent, error=f"{type(exc).__name__}: {exc}")
        latency = time.monotonic() - sent
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        return Answer(index, request.label, response.status, latency, sent,
                      body if isinstance(body, dict) else {}, response.getheader("Retry-After"))
    raise AssertionError("unreachable")
