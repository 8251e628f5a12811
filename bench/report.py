"""The results table: printed, and written to docs/benchmarks.md with the machine and date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ops.stack import ROOT

DOC = ROOT / "docs" / "benchmarks.md"

HOW_TO_READ = """\
## How to read it

* **ratio** is the measurement divided by its floor, both measured in this run on this machine,
  so neighbours' noise lands on both. For rates (req/s, envelopes/s, messages/s) higher is
  better and 1.00 means "as fast as the floor"; for times (cold start) lower is better and
  1.00 means "costs nothing over the floor". The absolute figures are this machine's and move
  from run to run; the ratios are what to compare between runs and commits.
* **cold start**: a fresh interpreter imports `main.py` through functions-framework and makes
  the one client the target needs (median of N runs); floor: functions-framework with a
  function that imports nothing, plus the same client.
* **edge**: webhooks/s and latency served by functions-framework/gunicorn (gthread,
  THREADS=8) against the Pub/Sub emulator, each request verified (token), validated,
  enveloped and its publish confirmed; floor: the same server and publisher publishing a
  fixed message.
* **writers**: `ledger.process` called directly on a real Postgres (pgserver, unix socket),
  one envelope after another; floor: a one-row INSERT transaction through the same pool.
  *stmts* is statements per envelope (BEGIN and COMMIT included), *rtt* is wire round trips
  per envelope (each one a wait on the server) — the figure that decides the speed over a
  network to Cloud SQL.
* **soak and drills** are not in this table: `make soak` prints its own table of counts.
* **end to end**: webhook sent -> its `events` row committed, paced below saturation on the
  whole local stack (polling granularity 10 ms); compared with the 202 latency of the same
  requests.
* **redrive**: messages/s moved out of a dead-letter subscription vs raw publish of the same
  messages.
"""


NOTES = (
    "Changed because of these numbers: `ops.deadletters.redrive` (`ctower dlq redrive`) republished one "
    "message at a time and waited for each confirmation (~10 ms each: the publisher's 5 ms batch window plus "
    "the round trip). Now it works a pull at a time: up to 100 messages published together, every "
    "confirmation awaited (one shared deadline), then exactly the confirmed ones acked in one request; a "
    "failed publish is nacked and reported, so a message is still acked only once its copy is confirmed. "
    "Before: 55-76 msg/s, 0.02-0.03 of raw publish; after: 1,600-3,000 msg/s, 0.49-0.78, level with the "
    "bare batched loop row in the same runs (7 runs of bench.redrive alone, shared 2-core machine).",
    "Changed because of these numbers: shared/db.py prepares each parameterised statement once per "
    "connection and commits with a simple query. pg8000 ran every parameterised statement unnamed "
    "(parse, describe, bind/execute: 3 round trips) and COMMIT the same way. Before: lead_created 22 rtt, "
    "message_received 25, proposal_sent/won 28, floor 7; after: 8, 9, 10, 3. Same run, same machine: "
    "lead_created 224 -> 260 env/s, stage_changed 209 -> 318, obra_created 179 -> 397, duplicate delivery "
    "475 -> 800 (unix socket, where a round trip is ~30 us; over TCP to Cloud SQL each saved trip is ~0.3-1 ms).",
    "Changed because of a drill: `PubSubPublisher.check_topics` called get_topic with the client's default "
    "retry, which keeps retrying UNAVAILABLE for 60 s per topic; with Pub/Sub unreachable `health?detail=true` "
    "hung for minutes instead of answering 503. Now retry=None, bounded by PUBLISH_TIMEOUT_SECONDS "
    "(before: >120 s for 2 topics against a closed port; after: 0.5 s).",
    "Cold start, profiled with `python -X importtime` (bench.cold_start.import_profile): every target loads "
    "main.py, which imports functions.assistant and with it shared.assistant.service (~250 ms of the writers' "
    "~640 ms). Importing the assistant's service inside its handler (functions/assistant.py, another "
    "engineer's file) would take that off every other target; writers would land near 1.6x their floor.",
    "Edge, profiled with pyinstrument (in-process, 350 sequential WhatsApp webhooks): ~70% of the wall time is "
    "waiting for Pub/Sub's confirmation, which the floor waits for too; the gap to the floor is CPU: "
    "routing and the Evolution adapter ~1.1 ms (phonenumbers parsing twice: adapter and payload model), the "
    "JSON log line ~0.4 ms, `configure_logging` on every request ~0.2 ms (setLevel clears logging's cache). "
    "Publisher batch max_latency 5 ms vs 1 ms made no measurable difference at 8 connections; left at 5 ms.",
    "Not changed (the ledger is another engineer's file): `ledger.process` inserts the event as 'processing' "
    "then updates it to 'processed' inside the same transaction, and looks it up before inserting; inserting "
    "it as 'processed' with ON CONFLICT first would save 2 of the ~8 round trips per envelope.",
)


@dataclass(frozen=True)
class Row:
    group: str
    name: str
    figure: str  # the absolute figure(s), formatted
    floor: str
    ratio: float | None
    note: str = ""


def render(rows: Sequence[Row]) -> str:
    header = "| measurement | | figure | floor | ratio | |\n|---|---|---|---|---:|---|\n"
    lines = [f"| {r.group} | {r.name} | {r.figure} | {r.floor} | "
             f"{'' if r.ratio is None else f'{r.ratio:.2f}'} | {r.note} |" for r in rows]
    return header + "\n".join(lines) + "\n"


def write(rows: Sequence[Row], machine: dict[str, str], notes: Sequence[str], path: Path = DOC) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    machine_lines = "\n".join(f"* {k}: {v}" for k, v in machine.items())
    extra = "\n".join(f"* {n}" for n in notes)
    path.write_text(
        "# Benchmarks\n\n"
        "Written by `make bench` (`python -m bench.run`); the table below is the last run's real output.\n\n"
        f"## Machine\n\n{machine_lines}\n\n## Results\n\n{render(rows)}\n"
        f"{HOW_TO_READ}\n## Notes from this run\n\n{extra}\n",
        encoding="utf-8")
