"""Edge: webhooks/s and p50/p99 of the WhatsApp and lead webhooks, served as Cloud Functions serves
them (functions-framework -> gunicorn gthread), publishing to the emulator and waiting for the
confirmation; against `floor_publish` (same server, threads and publisher; it only publishes the body
it is sent, an envelope shaped like the edge's, with the same attributes).

Each server's output goes straight to a file in the work directory, not through the stack's
pump (a thread of this process, the load generator, reading and re-printing every line): the
edge logs a line per request and the floor none, so the pump's reading, not the function, held
the edge back (its pipe filled, and the server's writes blocked behind it: p50 21 -> 15 ms).
In Cloud Run a log agent outside the instance takes stdout; a file is the closest stand-in,
and the function still formats and writes every line itself. The floor is served the same way.

`python -m bench.edge` runs this step alone (its own emulator) and prints the ratios. Reading them:
the 8 connections move in step (a batch confirms its messages together, so their next requests
arrive together), and every request's Python work waits for the GIL behind the others', so on this
2-core machine each microsecond of work per request costs several in latency. A floor variant that
only adds a pure-Python loop before the same publish measured 0.93 with ~100 us of loop and 0.81
with ~250 us (one interleaved run, load average 12); the edge's own work is ~250 us.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import cli, stacks
from bench.floor_functions import __file__ as FLOOR_FILE
from ops.stack import ROOT, Stack, free_port, port_open, wait_until
from tests.traffic import load, tenants
from tests.traffic.sources import SOURCES, Source, request_for
from tests.traffic.stats import ratio

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


def serve(stack: Stack, name: str, target: str, source: Path, env: dict[str, str], log: Path) -> str:
    """Serve a target as Stack.serve does (functions-framework, a free port), its output into `log`;
    the stack stops it with its own processes."""
    port = free_port()
    cmd = [sys.executable, "-m", "functions_framework", "--target", target, "--source", str(source),
           "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w", encoding="utf-8") as out:  # the server writes to its own copy of the file
        stack.processes[name] = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                                 text=True, start_new_session=True, cwd=ROOT)
    wait_until(lambda: port_open(port), 60, f"function {name}")
    return f"http://127.0.0.1:{port}"


def serve_edge(stack: Stack, names: list[str], workdir: Path) -> dict[str, str]:
    """Serve the real targets named (from main.py) and the floor on free ports of their own."""
    env = {"PUBSUB_EMULATOR_HOST": stack.emulator_host or "", "GOOGLE_CLOUD_PROJECT": stack.project,
           "THREADS": THREADS, "PYTHONUNBUFFERED": "1", **tenants.configure(workdir)}
    urls = {name: serve(stack, f"bench-{name}", name, ROOT / "main.py", env, workdir / f"bench-{name}.log")
            for name in names}
    floor_env = {**env, "FLOOR_ATTRIBUTES": json.dumps(FLOOR_MESSAGE[1])}
    urls["floor_publish"] = serve(stack, "bench-floor", "floor_publish", Path(FLOOR_FILE), floor_env,
                                  workdir / "bench-floor.log")
    return urls


def _edge_shaped_message() -> tuple[bytes, dict[str, str]]:
    """An envelope as the edge publishes one for the bench's Evolution webhook (body and attributes)."""
    from shared.envelope import build_envelope
    from shared.payloads import MessageReceived

    phone = "5511987650001"
    envelope = build_envelope(
        event_type="message_received", tenant=tenants.TENANTS[1], source="evolution",
        correlation_id="0f6c1c5e-8d1b-4a54-9a51-3b7f2f7f1a01", source_id="BENCH0000000001",
        payload=MessageReceived(provider="evolution", provider_message_id="BENCH0000000001", phone=phone,
                                chat_id=f"{phone}@s.whatsapp.net", display_name="Cliente 1",
                                text="Olá, quero um orçamento de piso (1)", raw_type="conversation"))
    return envelope.to_bytes(), envelope.attributes()


FLOOR_MESSAGE = _edge_shaped_message()


def measure(stack: Stack, workdir: Path, requests: int = 1500, concurrency: int = 8, max_seconds: float = 25.0,
            rounds: int = 2) -> list[EdgeFigure]:
    urls = serve_edge(stack, ["whatsapp", "leads"], workdir)
    tenant = tenants.TENANTS[1]
    plans: dict[str, Callable[[int], load.Request]] = {
        "whatsapp (evolution)": lambda i: request_for(_source("message_received").build(i, tenant), urls, "w"),
        "leads (site form)": lambda i: request_for(_source("lead_created").build(i, tenant), urls, "l"),
        "floor: fixed publish": lambda i: load.Request(urls["floor_publish"] + "/", FLOOR_MESSAGE[0], {}, "floor"),
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


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.edge`: this step of `make bench` alone, on an emulator of its own; prints the ratios."""
    cli.stop_cleanly_on_sigterm()
    args = cli.parser(__doc__, requests=1500, rounds=2).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ct-bench-edge-") as tmp:
        workdir = Path(tmp)
        with (workdir / "services.log").open("w", encoding="utf-8") as log, \
                stacks.emulator(workdir / "emulator", log) as stack:
            figures = measure(stack, workdir / "emulator", requests=args.requests, rounds=args.rounds)
    floor = figures[-1]
    for figure in figures:
        print(f"{figure.name:24} {figure.rps:6.0f} req/s  p50 {figure.p50_ms:5.1f} ms  p99 {figure.p99_ms:5.1f} ms  "
              f"req/s {ratio(figure.rps, floor.rps):.2f}x  p99 {ratio(figure.p99_ms, floor.p99_ms):.2f}x  "
              f"{figure.ok}/{figure.sent} accepted")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
