"""`python -m bench.soak_fuzz` (part of `make soak`; runs alone too): random bodies at every endpoint.

For each source of the soak's mix (every endpoint a tenant can turn on, and the events API)
at least 2,000 bodies: the source's real webhook, half of them kept whole with odd characters
spliced into strings and odd fields added (mostly accepted), half with parts dropped, retyped
or replaced (mostly refused). Strings get any code point (NUL and lone surrogates included);
values include integers past Python's int-to-str limit, NaN/Infinity, nesting thousands deep
and odd times. Each is sent with the tenant's valid proof (re-signed after the change), on a
local stack of its own.

Two counts must be 0, the edge rule's two halves: answers >= 500, and webhooks answered 202
whose events have no `processed` (or visibly `failed`) row in the ledger once the writers
drain. `--write` puts the table into docs/soak.md (replacing the last run's). Exit 1 when a
count is not 0.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cli, soak_doc, stacks
from shared.db import Database
from tests.standins import GraphStandIn
from tests.traffic import load, tenants
from tests.traffic.sources import SOURCES, Source, Webhook

PLACEHOLDER = "\u2603fuzz\u2603"  # where a literal json.dumps cannot write goes, once serialized
SOAK_ENV = {"THREADS": "16", "DB_POOL_SIZE": "16"}


def _char(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.2:
        return "\x00"
    if roll < 0.4:
        return chr(0xD800 + rng.randrange(0x800))  # a lone surrogate
    if roll < 0.6:
        return chr(rng.randrange(0x20, 0x7F))
    return chr(rng.randrange(0x110000))


def _text(rng: random.Random, size: int = 12) -> str:
    return "".join(_char(rng) for _ in range(rng.randrange(size + 1)))


def _leaf(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    if kind == 0:
        return PLACEHOLDER
    if kind == 1:
        return rng.randrange(-(10**60), 10**60)
    if kind == 2:
        return rng.uniform(-1e300, 1e300)
    if kind == 3:
        return rng.choice([None, True, False, [], {}])
    if kind == 4:
        return [_leaf(rng) for _ in range(rng.randrange(3))]
    if kind == 5:
        return {_text(rng, 6): _leaf(rng) for _ in range(rng.randrange(3))}
    return _text(rng)


def _literal(rng: random.Random) -> str:
    """JSON text Python parses but no writer could store or print as it is."""
    depth = rng.randrange(20, 3000)
    return rng.choice([
        "9" * rng.randrange(4301, 6000), "1" * rng.randrange(41, 4300), "NaN", "-Infinity", "1e400",
        "[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, '"a\\u0000b"', '"\\ud800"',
        '"x\\udfff"', '{"k\\u0000\\ud800": 1}', '"0001-01-01T00:00:00+14:00"', '"2999-01-01T00:00:00Z"',
    ])


def mutate(value: Any, rng: random.Random) -> Any:
    """Keep, drop, retype, splice or recurse into each part of a real payload."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.randrange(12)
            if roll == 0:
                continue
            out[key] = _leaf(rng) if roll == 1 else mutate(item, rng)
        if rng.randrange(6) == 0:
            out[_text(rng, 8)] = _leaf(rng)
        return out
    if isinstance(value, list):
        return [mutate(v, rng) for v in value if rng.randrange(8)] + ([_leaf(rng)] if rng.randrange(8) == 0 else [])
    if isinstance(value, str) and rng.randrange(3) == 0:
        at = rng.randrange(len(value) + 1)
        return value[:at] + _text(rng, 4) + value[at:]
    return _leaf(rng) if rng.randrange(8) == 0 else value


def taint(value: Any, rng: random.Random) -> Any:
    """A real payload kept whole, with odd characters spliced into its strings and odd fields added."""
    if isinstance(value, str):
        if rng.randrange(3):
            return value
        at = rng.randrange(len(value) + 1)
        return value[:at] + _text(rng, 4) + value[at:]
    if isinstance(value, list):
        return [taint(v, rng) for v in value]
    if isinstance(value, dict):
        out = {key: taint(item, rng) for key, item in value.items()}
        if rng.randrange(4) == 0:
            out[_text(rng, 8)] = _leaf(rng)
        return out
    return value


def serialize(body: Any, rng: random.Random) -> bytes:
    text = json.dumps(body)  # ensure_ascii: NUL and lone surrogates travel as \\u escapes
    quoted = json.dumps(PLACEHOLDER)
    while quoted in text:
        text = text.replace(quoted, _literal(rng), 1)
    return text.encode()


def fuzzed(webhook: Webhook, tenant: str, rng: random.Random, url: str, label: str) -> load.Request:
    """The webhook with its body fuzzed, carrying the proof its platform would send with those bytes."""
    body = taint(webhook.body, rng) if rng.randrange(2) else mutate(webhook.body, rng)
    if isinstance(body, dict) and "google_key" in webhook.body:  # Google Ads proves itself in the body
        body["google_key"] = webhook.body["google_key"]
    raw = serialize(body, rng)
    headers = dict(webhook.headers)
    if "X-Hub-Signature-256" in headers:
        headers["X-Hub-Signature-256"] = tenants.hub_signature(tenant, raw)
    if "Typeform-Signature" in headers:
        headers["Typeform-Signature"] = tenants.typeform_signature(tenant, raw)
    return load.Request(url.rstrip("/") + webhook.path, raw, headers, label)


def plan(per_endpoint: int, seed: int, function_urls: dict[str, str]) -> list[load.Request]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible fuzz, not a secret
    requests = []
    for source in SOURCES:
        for i in range(per_endpoint):
            tenant = tenants.TENANTS[i % len(tenants.TENANTS)]
            webhook = source.build(50_000 + i, tenant)
            requests.append(fuzzed(webhook, tenant, rng, function_urls[webhook.function], source.name))
    rng.shuffle(requests)
    return requests


def _accepted(result: load.LoadResult) -> dict[str, str]:
    """event_id -> the source that got it accepted."""
    found: dict[str, str] = {}
    for answer in result.answers:
        if answer.status == 202:
            ids = answer.body.get("event_ids") or [answer.body.get("event_id")]
            for event_id in ids if isinstance(ids, list) else []:
                found[str(event_id)] = answer.label
    return found


def _ledger(db: Database, event_ids: list[str]) -> dict[str, str]:
    with db.transaction() as cur:
        cur.execute("SELECT event_id, status FROM events WHERE event_id = ANY(%s) AND status <> 'duplicate'",
                    (event_ids,))
        return {str(event_id): str(status) for event_id, status in cur.fetchall()}


def _drain(db: Database, event_ids: list[str], timeout: float) -> dict[str, str]:
    """Wait (bounded) until every accepted event has its ledger row."""
    deadline = time.monotonic() + timeout
    rows = _ledger(db, event_ids)
    while len(rows) < len(event_ids) and time.monotonic() < deadline:
        time.sleep(2)
        rows = _ledger(db, event_ids)
    return rows


def run(per_endpoint: int, seed: int, concurrency: int, drain_seconds: float, write: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="ct-fuzz-") as tmp, \
            (Path(tmp) / "stack.log").open("w", encoding="utf-8") as log, \
            contextlib.closing(GraphStandIn()) as graph, \
            stacks.environment({**tenants.secret_env(), **SOAK_ENV, "META_GRAPH_BASE_URL": graph.url}), \
            stacks.full_stack(Path(tmp) / "stack", log) as stack:
        assert stack.database_url and stack.tenants_file
        graph.tokens.update(tenants.page_tokens())
        # The Lead Ads leads the unchanged ids name, so a body whose ids survived is fetched and written.
        graph.leads.update(s.graph_lead(50_000 + i) for s in SOURCES if s.graph_lead for i in range(per_endpoint))
        tenants.register(stack.database_url, stack.tenants_file)
        requests = plan(per_endpoint, seed, stack.function_urls)
        print(f"[fuzz] sending {len(requests)} random bodies ({per_endpoint} per endpoint, {len(SOURCES)} "
              f"endpoints) over {concurrency} connections...", file=sys.stderr, flush=True)
        result = load.run(requests, concurrency=concurrency, max_seconds=1800)
        accepted = _accepted(result)
        print(f"[fuzz] sent in {result.elapsed:.0f} s; {len(accepted)} events accepted; draining...",
              file=sys.stderr, flush=True)
        db = Database.for_url(stack.database_url, size=1)
        try:
            rows = _drain(db, list(accepted), drain_seconds)
        finally:
            db.close()
    table, failures = report(result, accepted, rows)
    print("\n" + table)
    if write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        soak_doc.put_section("Fuzz", f"`python -m bench.soak_fuzz` ({per_endpoint} bodies per endpoint, seed {seed}, "
                             f"{when}, {result.elapsed:.0f} s to send): "
                             + ("**0 answers >= 500, 0 accepted events without a ledger row**" if not failures else
                                f"**FAILED: {'; '.join(failures)}**") + "\n\n" + table + "\n")
    return 1 if failures else 0


def report(result: load.LoadResult, accepted: dict[str, str], rows: dict[str, str]) -> tuple[str, list[str]]:
    """The markdown table per endpoint, and what failed the rule."""
    by_label: dict[str, Counter[str]] = defaultdict(Counter)
    for answer in result.answers:
        status = answer.status
        by_label[answer.label]["sent"] += 1
        by_label[answer.label]["5xx" if status >= 500 else "no answer" if status == 0 else f"{status // 100}xx"] += 1
    for event_id, label in accepted.items():
        by_label[label]["events accepted"] += 1
        row = rows.get(event_id, "missing")
        by_label[label][{"processed": "processed", "failed": "failed (visible)"}.get(row, "no ledger row")] += 1
    columns = ["sent", "2xx", "4xx", "5xx", "no answer", "events accepted", "processed", "failed (visible)",
               "no ledger row"]
    lines = ["| endpoint | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    total: Counter[str] = Counter()
    for source in SOURCES:
        counts = by_label[source.name]
        total.update(counts)
        lines.append(f"| {_endpoint(source)} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    lines.append("| **all** | " + " | ".join(f"**{total[c]}**" for c in columns) + " |")
    failures = []
    if total["5xx"]:
        failures.append(f"{total['5xx']} answers >= 500")
    if total["no answer"]:
        failures.append(f"{total['no answer']} requests without an answer")
    if total["no ledger row"]:
        failures.append(f"{total['no ledger row']} accepted events without a ledger row")
    return "\n".join(lines), failures


def _endpoint(source: Source) -> str:
    webhook = source.build(0, "t")
    return f"{webhook.function} {webhook.path.partition('?')[0].replace('/t/', '/<tenant>/')} ({source.name})"


def main(argv: list[str] | None = None) -> int:
    cli.stop_cleanly_on_sigterm()
    parser = cli.parser(__doc__, per_endpoint=2000, seed=12, concurrency=16, drain_seconds=600.0)
    parser.add_argument("--write", action="store_true", help="also put the table into docs/soak.md")
    args = parser.parse_args(argv)
    return run(args.per_endpoint, args.seed, args.concurrency, args.drain_seconds, args.write)


if __name__ == "__main__":
    raise SystemExit(main())
