"""Memory: peak resident memory of every function's server after a mixed load, against a floor.

Cloud Functions gen2 gives each instance one memory limit (256 MiB for these functions unless
overridden), so what counts is the peak of the whole server — the functions-framework/gunicorn
process tree — after it has served real work. Each function's peak (VmHWM, summed over its
process tree; shared pages counted in each process, so this errs high) is compared with a floor
served the same way and given the same number of requests: `floor_publish` for HTTP functions
(framework + the Pub/Sub publisher), `floor_writer` for subscribers (framework + a pg8000
connection running one statement per push).
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

from ops.stack import ROOT, Stack, free_port
from shared.db import Database
from tests.traffic import load, sources

FLOOR_FILE = ROOT / "bench" / "floor_functions.py"
LIMIT_MIB = 256


@dataclass(frozen=True)
class MemoryFigure:
    name: str
    kind: str  # http | subscriber
    peak_mib: float
    floor_mib: float
    requests: int


def peak_mib(proc_pid: int) -> float:
    """Sum of VmHWM (peak RSS) over a process and its children, in MiB."""
    root = psutil.Process(proc_pid)
    total_kib = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except FileNotFoundError:
            continue
        total_kib += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return total_kib / 1024


def _push_body(stack: Stack, i: int) -> bytes:
    message = {"data": base64.b64encode(json.dumps({"floor": i}).encode()).decode(), "messageId": str(i),
               "attributes": {"event_type": "floor"}, "publishTime": "2026-01-01T00:00:00Z"}
    return json.dumps({"message": message, "subscription": f"projects/{stack.project}/subscriptions/floor"}).encode()


def _settle(database_url: str, timeout: float = 60.0) -> None:
    """Wait until the writers stop adding `events` rows (the load has drained)."""
    db = Database.for_url(database_url, size=1)
    try:
        last, stable_since, deadline = -1, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            with db.transaction() as cur:
                cur.execute("SELECT count(*) FROM events")
                count = int(cur.fetchone()[0])
            if count != last:
                last, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since > 3:
                return
            time.sleep(0.5)
    finally:
        db.close()


def measure(stack: Stack, webhooks: int = 600) -> list[MemoryFigure]:
    """A mixed load from every source (but Meta Lead Ads, which needs the Graph stand-in), then each peak."""
    assert stack.database_url
    mix = [s for s in sources.SOURCES if s.graph_lead is None]
    planned = sources.plan(webhooks, 0.1, sources=mix)
    built = [(p, p.source.build(p.serial, p.tenant)) for p in planned]
    load.run([sources.request_for(w, stack.function_urls, p.source.name) for p, w in built],
             concurrency=8, max_seconds=120)
    _settle(stack.database_url)
    by_function = Counter(w.function for _, w in built)  # the edge
    for p in planned:  # and every subscriber its event type is pushed to
        by_function.update(stack.topology.event_type(p.source.event_type).subscriptions.values())
    busiest = max(by_function.values())

    env = {"PUBSUB_EMULATOR_HOST": stack.emulator_host or "", "GOOGLE_CLOUD_PROJECT": stack.project,
           "DATABASE_URL": stack.database_url, "PYTHONUNBUFFERED": "1", "THREADS": "8"}
    floors = {"http": stack.serve("floor-memory-http", "floor_publish", FLOOR_FILE, free_port(), env),
              "subscriber": stack.serve("floor-memory-subscriber", "floor_writer", FLOOR_FILE, free_port(), env)}
    topic = next(iter(stack.topology.event_types.values())).topic
    load.run([load.Request(floors["http"] + "/", b"{}", {}, "floor") for _ in range(busiest)],
             concurrency=8, max_seconds=60)
    load.run([load.Request(f"{floors['subscriber']}/projects/{stack.project}/topics/{topic}", _push_body(stack, i),
                           {"Content-Type": "application/json"}, "floor") for i in range(busiest)],
             concurrency=8, max_seconds=60)
    floor_mib = {kind: peak_mib(stack.processes[f"floor-memory-{kind}"].pid) for kind in floors}

    figures = []
    for fn in stack.topology.functions.values():
        kind = "http" if fn.trigger == "http" else "subscriber"
        figures.append(MemoryFigure(fn.name, kind, peak_mib(stack.processes[fn.name].pid), floor_mib[kind],
                                    by_function.get(fn.name, 0)))
    return figures
