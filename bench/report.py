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
  the one client the target needs (median of N runs), the project's bytecode compiled once
  beforehand as the deployed build does; floor: functions-framework with a function that
  imports nothing, plus the same client.
* **edge**: webhooks/s and latency served by functions-framework/gunicorn (gthread,
  THREADS=8) against the Pub/Sub emulator, each request verified (token), validated,
  enveloped, logged and its publish confirmed; floor: the same server and publisher publishing a
  fixed message. Each server writes its output to a file (as a platform's log agent takes it).
* **writers**: `ledger.process` called directly on a real Postgres (pgserver, unix socket),
  one envelope after another; floor: a one-row INSERT transaction through the same pool.
  *stmts* is statements per envelope (BEGIN and COMMIT included), *rtt* is wire round trips
  per envelope (each one a wait on the server) — the figure that decides the speed over a
  network to Cloud SQL.
* **soak and drills** are not in this table: `make soak` prints its own tables of counts and
  writes them to [soak.md](soak.md).
* **end to end**: webhook sent -> its `events` row committed, paced below saturation on the
  whole local stack (polling granularity 10 ms); compared with the 202 latency of the same
  requests.
* **memory**: peak resident memory (VmHWM summed over the functions-framework/gunicorn process
  tree) of every function after a mixed load from every source but Meta Lead Ads, drained;
  floor: `floor_publish` (HTTP) or `floor_writer` (a pg8000 connection, one statement per push)
  served the same way and given as many requests as the busiest function. Lower is better; the
  note says whether it fits the functions' 256 MiB.
* **redrive**: messages/s moved out of a dead-letter subscription vs raw publish of the same
  messages.
"""


NOTES = (
    "These notes are the history of what the numbers changed, newest first, not this run's figures; "
    "this run's figures are the table above.",
    "Second session, redrive: `ctower dlq redrive` republished one message at a time and waited for each "
    "confirmation (~10 ms each: the publisher's 5 ms batch window plus the round trip). Now it works a pull "
    "at a time: up to 100 messages published together, every confirmation awaited (one shared deadline), then "
    "exactly the confirmed ones acked in one request; a failed publish is nacked and reported, so a message is "
    "still acked only once its copy is confirmed. Before: 55-76 msg/s, 0.02-0.03 of raw publish; after: "
    "1,600-3,000 msg/s, 0.49-0.78, level with the bare batched loop (7 runs of bench.redrive alone).",
    "Second session, cold start: every target loaded main.py, which imported every function module (the "
    "assistant's OpenAI client, the edge's source parsers) into every target: writers were 2.6-3.4x their "
    "floor. main.py now resolves a target through a module __getattr__ and shared.writers imports an event "
    "type's writer on first use. What is left over the writers' floor is the envelope contract itself: "
    "pydantic, the payload models, phonenumbers and email-validator (~180 ms, `python -X importtime`).",
    "Second session, writers: pyinstrument showed pg8000's convert_paramstyle (a char-by-char scan of the SQL) "
    "taking ~30% of a writer's time, on every execute of an already prepared statement; the rewritten SQL now "
    "lives with the prepared statement (consecutive runs: lead_created 445 -> 516 env/s, message_received "
    "295 -> 426, stage_changed 439 -> 569). The ledger inserts a first delivery as processed with ON CONFLICT "
    "DO NOTHING instead of SELECT FOR UPDATE + INSERT 'processing' + UPDATE: lead_created 8 -> 6 round trips, "
    "message_received 9 -> 7; a duplicate delivery costs 5 instead of 4 (the conflicting insert comes first).",
    "Second session, edge CPU: `configure_logging` ran setLevel on every request (it clears every logger's level "
    "cache) and is now a no-op once set up; normalize_phone (~40 us a parse, called by the source adapter and "
    "again by the payload model) is cached. Most of the edge's wall time is waiting for Pub/Sub's "
    "confirmation, which the floor waits for too.",
    "First session, writers: shared/db.py prepares each parameterised statement once per connection and commits "
    "with a simple query. pg8000 ran every parameterised statement unnamed (parse, describe, bind/execute: 3 "
    "round trips) and COMMIT the same way: lead_created 22 -> 8 rtt, message_received 25 -> 9 (unix socket, "
    "~30 us a round trip; over TCP to Cloud SQL each saved trip is ~0.3-1 ms).",
    "First session, a drill: `PubSubPublisher.check_topics` used the client's default retry, which retries "
    "UNAVAILABLE for 60 s per topic, so with Pub/Sub unreachable `health?detail=true` hung for minutes instead "
    "of answering 503. Now retry=None, bounded by PUBLISH_TIMEOUT_SECONDS (>120 s -> 0.5 s for 2 topics).",
    "Publisher batch max_latency 5 ms vs 1 ms made no measurable difference at 8 connections; left at 5 ms.",
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
        f"{HOW_TO_READ}\n## What the numbers changed\n\n{extra}\n",
        encoding="utf-8")
