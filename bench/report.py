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
  the clients the target needs (median of N runs): the Pub/Sub publisher for HTTP targets, the
  pool and pg8000 for subscribers, and the OpenAI client too for the assistant; the project's
  bytecode compiled once beforehand as the deployed build does; floor: functions-framework with
  a function that imports nothing, plus the same clients.
* **edge**: webhooks/s and latency served by functions-framework/gunicorn (gthread,
  THREADS=8) against the Pub/Sub emulator, each request verified (token), validated,
  enveloped, logged and its publish confirmed; floor: the same server and publisher publishing the
  body it is sent, an envelope shaped like the edge's with the same attributes (so the emulator,
  on the same 2 cores, does the same work for both). Each server writes its output to a file (as a
  platform's log agent takes it).
* **writers**: `ledger.process` called directly on a real Postgres (pgserver, unix socket),
  one envelope after another, for every event type; floor: a one-row INSERT transaction through
  the same pool, run in slices between each writer's slices (each row's floor is its own slices').
  *stmts* is statements per envelope (BEGIN and COMMIT included), *rtt* is wire round trips
  per envelope (each one a wait on the server) — the figure that decides the speed over a
  network to Cloud SQL. The rows *over a 0.5 ms link* run the same bench, floor included, on a
  database of its own through `bench/link.py`, a loopback TCP proxy that delays every byte by
  half of 0.5 ms each way: Cloud SQL's round trip from a function in its region (0.3-1 ms),
  where a unix socket's is ~50 us. The note gives, per envelope, this process's CPU, the Postgres
  backends' CPU (/proc schedstat) and the WAL bytes written, then the same for its floor: on the
  socket, the rows and index entries a write makes (lead_created: 2 rows and their index
  entries; the floor: 1 row, 1 entry) cost the server more than the 2 round trips saved.
* **soak and drills** are not in this table: `make soak` prints its own tables of counts and
  writes them to [soak.md](soak.md).
* **end to end**: webhook sent -> its `events` row committed, paced below saturation on the
  whole local stack; the commit time is Postgres' own (track_commit_timestamp), not when a
  poll saw the row. Compared with the 202 latency of the same requests. The stage p50s say
  where the time went; the row below it measures delivery alone. Locally the stack pushes the
  subscriptions itself (ops/pusher.py), as Cloud push does; the emulator's own push (0.8.x),
  no longer used, slept 100 ms whenever a subscription was idle, ~50 ms of wait at the median.
* **memory**: peak resident memory (VmHWM summed over the functions-framework/gunicorn process
  tree) of every function after a mixed load from every source but Meta Lead Ads, drained, and
  for the console 20 seller sessions over HTTP (log in, inbox, board, leads opened, a stage move
  and a note); floor: `floor_publish` (HTTP), `floor_writer` (a pg8000 connection, one statement
  per push) or for the console `floor_console` (both: a statement and a publish per request),
  served the same way and given as many requests as the busiest function. Lower is better; the
  note says whether it fits the functions' 256 MiB.
* **redrive**: messages/s moved out of a dead-letter subscription vs raw publish of the same
  5,000 messages as Publish requests of 1,000 through the official client's generated API (its
  fastest path, and the one the movers publish through); the client's batching layer (a future
  per message, the floor until the movers stopped using it) is shown as a row of its own. Each
  mover runs five times, interleaved with the floor, and the median is shown.
"""


NOTES = (
    "These notes are the history of what the numbers changed, newest first, not this run's figures; "
    "this run's figures are the table above.",
    "Fifth session, end to end: the local stack delivers pushes itself (ops/pusher.py): pull subscriptions "
    "with the cloud's ack deadline and dead-letter policy, 8 long-poll pulls each re-issued at its own point of "
    "the emulator's 50 ms look cycle, Cloud push's success codes, and its backoff through ack deadlines. "
    "Delivery alone 49-51 ms -> 3-4 ms at p50 (p99 96-99 -> 5-8); webhook -> committed row 58-62 -> 18-21 ms "
    "against a 202 of 12-14 ms: 4.25-4.70x -> 1.40-1.58x (four runs). The emulator push's stall after several "
    "failed pushes went with it (DeliveryWatch and the automatic seek deleted).",
    "Fifth session, redrive and replay: each pulled batch is published as one Publish request "
    "(ops/publish_requests.py) instead of a future per message, two pulls are under way, acks are gathered up "
    "to 1,000 within 0.5 s, and replay sends its ids as one JSON array. Redrive 2,600-5,150 -> 6,800-12,400 "
    "msg/s, replay 2,900-7,400 -> 7,400-12,900 (loaded machine). The floor became the official client's "
    "fastest publish (Publish requests of 1,000), since the movers now publish that way: against it they read "
    "0.18-0.30; against the old floor (the batching layer, still a row) 1.1-1.8. CPU per message, ours / the "
    "emulator's: redrive 180-190 / 170-240 -> 46-68 / 60-84 us; floor 8-12 / 12-32. What is left is the "
    "emulator's pull, 3-7x a publish's cost.",
    "Fifth session, edge: the floor now publishes an envelope shaped like the edge's with the same 6 attributes "
    "(it published 420 bytes with 2, and the emulator shares the 2 cores). Logging's per-record caller, thread "
    "and process lookups are off (34 -> 18 us a line), the storable check answers from a quick pass, and "
    "gc.freeze after an instance's first request ends full collections over ~85k import-time objects that "
    "stalled every thread 38-132 ms every ~1,500-2,000 webhooks (after: 0.4-0.6 ms). Interleaved old/new: "
    "whatsapp 0.78 -> 0.81 (p99 66 -> 43 ms), leads 0.68 -> 0.75 (p99 118 -> 88). Under load the same Python "
    "costs 2-3.5x its warm cost and the 8 connections queue for the GIL: a floor plus a pure-Python loop of "
    "~100 / 250 us measures 0.93 / 0.81, and the edge's own work is ~250 us.",
    "Fifth session, writers: the rows show per-envelope client CPU, server CPU and WAL bytes. On the socket a "
    "write costs the server +120-300 us over the floor's one-row insert (lead_created writes 2 rows, "
    "message_received 3, each with several index entries, against the floor's 1 row and 1 entry), more than "
    "the 2 round trips saved (~60-100 us). The unread events_tenant_type_idx is dropped (sql/031: "
    "-115-160 B of WAL per envelope) and the envelope's JSON comes from pydantic directly (~10-20 us of "
    "client CPU); both within the noise of the ratios.",
    "Fifth session, cold start and memory: the assistant's cold start now includes its OpenAI client (against a "
    "floor with the same client): importing and making it costs ~0.9 s, far more than the rest of the target. "
    "What is left over a subscriber's floor is pydantic: pydantic_core alone imports in ~40 ms and "
    "pydantic.main in ~50 more, while 1.10x of a ~190 ms floor allows ~19 ms. The console's memory was "
    "measured with 0 requests and against the publisher-only floor; with 20 seller sessions and a floor "
    "holding what it holds (a pool and a publisher) the old code read 266 / 123 MiB (2.17, over 256 MiB). Each "
    "Argon2 check fills 64 MiB outside the GIL, and 8 logins at once had peaked at 526 MiB: checks now run one "
    "at a time and the dummy hash is made on first use, 201-202 / 120 MiB (1.67-1.68).",
    "Fourth session, writers: the ledger's bookkeeping (ct_ledger_enter) and each event type's write, one "
    "PL/pgSQL function each (sql/030_write_functions.sql), run as one prepared statement in an implicit "
    "transaction: 1 round trip per envelope for every event type and for a duplicate delivery (5-8 before); "
    "leadgen_received 2, as it asks whether the event was processed before calling the Graph API. On the unix "
    "socket that buys little, a round trip costing ~50 us there, while the ledger row with its 4 indexes, the "
    "lead lock and the write's own rows cost Postgres more than the floor's one row: the old code read 0.26-0.56 "
    "of the floor on the new bench (two runs), the new code 0.67-0.95 in the run above. The floor now runs in "
    "slices between each writer's slices (measured once, last, it had given one code 0.21-2.56). Over "
    "bench/link.py's 0.5 ms round trip, Cloud SQL's, every database-only writer runs at 1.67-2.08x its floor "
    "(the run above); leadgen_received stays below it, its time being the Graph API call.",
    "Fourth session, cold start and edge: the cold-start bench compiles the project's bytecode before timing, as "
    "the Cloud Functions build does (compileall); before, site-packages ran from .pyc and our code was compiled "
    "on every run (~100 ms at the edge). Subscribers read envelopes without phonenumbers and email-validator "
    "(E.164 digits and plain addresses the edge wrote are taken as they are, anything else parsed again), each "
    "channel loads only its own sources, each function compiles only its own payload models, health loads no "
    "pydantic, pydantic's plugin search is off: subscribers 1.7-2.6x -> 1.2-1.7x, edge targets 1.1-1.8x -> "
    "1.0-1.5x (several runs each). What is left for a subscriber is pydantic itself (40-100 ms) and building "
    "the envelope models, which every message needs. Edge: the phone is parsed once, no per-request lock on the "
    "tenant document or in the log formatter, and the bench writes the servers' output to a file as a "
    "platform's log agent would (py-spy showed them blocked on the stack's pipe); the ratio moved within the "
    "noise (0.60-0.82 before, 0.62-0.83 after, 13 runs). The edge's own work is ~250 us of CPU per request: "
    "phone parse 40, four validations 25, envelope and storable check 30, log line 25, route and proof 20, JSON 20.",
    "Fourth session, end to end: the watcher stamped a row when a 10 ms poll first saw it; the local stack's "
    "Postgres now records commit times (track_commit_timestamp) and the bench reads each row's "
    "pg_xact_commit_timestamp, with stage p50s and the emulator's push measured alone. Where the time goes "
    "(p50, two runs): 202 13-16 ms; webhook -> envelope 1.4-1.7 ms; envelope -> writer transaction 51-60 ms, "
    "of which the emulator's push alone is 49-54 ms (p99 101-103); transaction -> commit 2.1-2.5 ms. The emulator "
    "0.8.20 pushes from two loops per subscription that sleep a hard-coded 100 ms whenever the backlog is empty "
    "(PushLoop.checkIntervalMillis), so the ratio cannot reach 3x on it: 5.64x with the old watcher, 4.01-4.38x "
    "measured at the commit, nearly all of the excess that sleep, which Cloud Pub/Sub push does not have.",
    "Fourth session, redrive and replay: `ctower dlq redrive` pulls one batch ahead, keeps two chunks awaiting "
    "confirmation and acknowledges in the background (still only what was confirmed); pulls read the protobuf "
    "under proto-plus (py-spy: its field reads cost more than the pull) and an empty filter decodes nothing. "
    "Replay keeps two batches in flight. The bench now runs floor and movers five times interleaved (medians): "
    "the floor had been measured once, first, on a cold emulator, which flattered every mover (replay read "
    "1.08-2.03x). Old and new code in one emulator, 7 rounds, medians: redrive 0.49 -> 0.73 of raw publish "
    "(bodies that are not envelopes: 0.32 -> 0.56); replay 0.37 -> 0.70-0.73. Short of 0.85 on this shared "
    "2-core machine: the client's own publish costs ~70 us of Python per message, and the pulls and acks add "
    "~60% to the floor's CPU (Python and emulator), which pipelining cannot hide when both cores are busy.",
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
