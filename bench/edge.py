"""Edge: webhooks/s and p50/p99 of the WhatsApp and lead webhooks, served as Cloud Functions serves
them (functions-framework -> gunicorn gthread), publishing to the emulator and waiting for the
confirmation; against `floor_publish` (same server, threads and publisher; only a fixed publish).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.floor_functions import __file__ as FLOOR_FILE
from ops.stack import ROOT, Stack, free_port
from tests.traffic import load, tenants
from tests.traffic.sources import SOURCES, Source, request_for

THREADS = "8"


@dataclass(frozen=True)
class EdgeFigure:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int
    sent: int


def _source(event_type: str) -> Source:
    return next(s for s in SOURCES if s.event_type == event_type)


def serve_edge(stack: Stack, names: list[str], workdir: Path) -> dict[str, str]:
    """Serve the real targets named (from main.py) and the floor on free ports of their own."""
    env = {"PUBSUB_EMULATOR_HOST": stack.emulator_host or "", "GOOGLE_CLOUD_PROJECT": stack.project,
           "THREADS": THREADS, "PYTHONUNBUFFERED": "1", **tenants.configure(workdir)}
    urls = {name: stack.serve(f"bench-{name}", name, ROOT / "main.py", free_port(), env) for name in names}
    urls["floor_publish"] = stack.serve("bench-floor", "floor_publish", Path(FLOOR_FILE), free_port(), env)
    return urls


def measure(stack: Stack, workdir: Path, requests: int = 1500, concurrency: int = 8, max_seconds: float = 25.0,
            rounds: int = 2) -> list[EdgeFigure]:
    urls = serve_edge(stack, ["whatsapp", "leads"], workdir)
    tenant = tenants.TENANTS[1]
    plans: dict[str, Callable[[int], load.Request]] = {
        "whatsapp (evolution)": lambda i: request_for(_source("message_received").build(i, tenant), urls, "w"),
        "leads (site form)": lambda i: request_for(_source("lead_created").build(i, tenant), urls, "l"),
        "floor: fixed publish": lambda i: load.Request(urls["floor_publish"] + "/", b"{}", {}, "floor"),
    }
    totals: dict[str, list[load.LoadResult]] = {name: [] for name in plans}
    serial = 0
    for make in plans.values():  # warm every instance: imports, client, channel
        load.run([make(serial + i) for i in range(50)], concurrency=concurrency, max_seconds=30)
    serial += 50
    per_round = max(1, requests // rounds)
    for _ in range(rounds):  # alternate, so noise from the neighbours lands on all three
        for name, make in plans.items():
            batch = [make(serial + i) for i in range(per_round)]
            totals[name].append(load.run(batch, concurrency=concurrency, max_seconds=max_seconds / rounds))
        serial += per_round
    figures = []
    for name, results in totals.items():
        answers = [a for r in results for a in r.answers]
        merged = load.LoadResult(answers, sum(r.elapsed for r in results), sum(r.asked for r in results))
        figures.append(EdgeFigure(name, merged.rps, merged.latency(50) * 1000, merged.latency(99) * 1000,
                                  len(merged.ok), len(answers)))
    return figures
