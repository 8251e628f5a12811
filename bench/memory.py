"""Memory: peak resident memory of every function's server after a mixed load, against a floor.

Cloud Functions gen2 gives each instance one memory limit (256 MiB for these functions unless
overridden), so what counts is the peak of the whole server — the functions-framework/gunicorn
process tree — after it has served real work. Each function's peak (VmHWM, summed over its
process tree; shared pages counted in each process, so this errs high) is compared with a floor
served the same way and given the same number of requests: `floor_publish` for HTTP functions
(framework + the Pub/Sub publisher), `floor_writer` for subscribers (framework + a pg8000
connection running one statement per push), and for the console, which holds both a database
pool and a publisher, `floor_console` (framework + both, a statement and a publish per request).

The console gets what a seller does, over HTTP with a session like a browser's: log in, the
inbox and its live part, the board, leads opened, a stage moved and a note written (each an
event published and confirmed) — WARMUP_ROUNDS times, on the leads the load made.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlparse

import psutil

from ops.stack import ROOT, Stack, free_port
from shared.db import Database
from tests.traffic import load, sources

FLOOR_FILE = ROOT / "bench" / "floor_functions.py"
LIMIT_MIB = 256
WARMUP_ROUNDS = 20  # seller sessions given to the console; each ~10 requests


@dataclass(frozen=True)
class MemoryFigure:
    name: str
    kind: str  # http | subscriber | console
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


class _Seller:
    """A browser's side of a console session: the cookies it was given and the CSRF token of its pages."""

    def __init__(self, base: str) -> None:
        parsed = urlparse(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port
        self.cookies: dict[str, str] = {}
        self.requests = 0

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        """The answer's body; its cookie kept (Secure or not: this is the local stack's plain HTTP)."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=urlencode(form).encode() if form is not None else None,
                               headers=headers)
            answer = connection.getresponse()
            text = answer.read().decode("utf-8", "replace")
        finally:
            connection.close()
        self.requests += 1
        for cookie in answer.msg.get_all("Set-Cookie") or []:
            name, value = cookie.split(";", 1)[0].split("=", 1)
            self.cookies[name.strip()] = value
        # A page is a 200, a form a 303 to anywhere but the login page (which would mean no session).
        if answer.status != (200 if form is None else 303) or (answer.getheader("Location") or "").endswith("/login"):
            raise RuntimeError(f"console {method} {path}: {answer.status} {text[:200]}")
        return text

    def page(self, path: str) -> str:
        text = self.send("GET", path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', text)
        self.csrf = match.group(1) if match else getattr(self, "csrf", "")
        return text


def _warm_console(stack: Stack, database_url: str, rounds: int = WARMUP_ROUNDS) -> int:
    """A seller's sessions on the console; answers how many requests it served."""
    from shared.console.users import add_user

    db = Database.for_url(database_url, size=1)
    try:
        with db.transaction() as cur:
            cur.execute("SELECT tenant_id FROM leads GROUP BY tenant_id ORDER BY count(*) DESC LIMIT 1")
            tenant = str(cur.fetchone()[0])
            cur.execute("SELECT id FROM leads WHERE tenant_id = %s ORDER BY created_at DESC LIMIT %s",
                        (tenant, rounds * 2))
            leads = [str(row[0]) for row in cur.fetchall()]
            email, password = f"vendedor-{uuid.uuid4().hex[:8]}@example.com", secrets.token_urlsafe(12)
            add_user(cur, email=email, name="Vendedor Bench", role="seller", tenant=tenant, password=password)
    finally:
        db.close()
    served = 0
    for i in range(rounds):
        seller = _Seller(stack.function_urls["console"])
        seller.page("/login")
        seller.send("POST", "/login", {"csrf_token": seller.csrf, "email": email, "password": password})
        seller.page("/inbox")
        seller.send("GET", "/inbox?part=live")
        seller.page("/board")
        for lead in leads[2 * i:2 * i + 2]:
            seller.page(f"/leads/{lead}")
        lead = leads[2 * i % len(leads)]
        seller.page(f"/leads/{lead}")
        seller.send("POST", f"/leads/{lead}/stage", {"csrf_token": seller.csrf, "form_key": uuid.uuid4().hex,
                                                     "to_stage": "triagem", "reason": "bench"})
        seller.send("POST", f"/leads/{lead}/note", {"csrf_token": seller.csrf, "form_key": uuid.uuid4().hex,
                                                    "body": f"Ligar amanhã ({i})"})
        seller.page(f"/leads/{lead}")
        served += seller.requests
    return served


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
    by_function["console"] = _warm_console(stack, stack.database_url)
    busiest = max(by_function.values())

    env = {"PUBSUB_EMULATOR_HOST": stack.emulator_host or "", "GOOGLE_CLOUD_PROJECT": stack.project,
           "DATABASE_URL": stack.database_url, "PYTHONUNBUFFERED": "1", "THREADS": "8"}
    floors = {"http": stack.serve("floor-memory-http", "floor_publish", FLOOR_FILE, free_port(), env),
              "subscriber": stack.serve("floor-memory-subscriber", "floor_writer", FLOOR_FILE, free_port(), env),
              "console": stack.serve("floor-memory-console", "floor_console", FLOOR_FILE, free_port(), env)}
    topic = next(iter(stack.topology.event_types.values())).topic
    for kind in ("http", "console"):
        load.run([load.Request(floors[kind] + "/", b"{}", {}, "floor") for _ in range(busiest)],
                 concurrency=8, max_seconds=60)
    load.run([load.Request(f"{floors['subscriber']}/projects/{stack.project}/topics/{topic}", _push_body(stack, i),
                           {"Content-Type": "application/json"}, "floor") for i in range(busiest)],
             concurrency=8, max_seconds=60)
    floor_mib = {kind: peak_mib(stack.processes[f"floor-memory-{kind}"].pid) for kind in floors}

    figures = []
    for fn in stack.topology.functions.values():
        kind = "console" if fn.name == "console" else "http" if fn.trigger == "http" else "subscriber"
        figures.append(MemoryFigure(fn.name, kind, peak_mib(stack.processes[fn.name].pid), floor_mib[kind],
                                    by_function.get(fn.name, 0)))
    return figures


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.memory`: this bench alone, on a full stack of its own; prints each peak against its floor."""
    import sys
    import tempfile

    from bench import cli, stacks
    from tests.traffic import tenants

    cli.stop_cleanly_on_sigterm()
    args = cli.parser(__doc__, webhooks=600).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ct-memory-") as tmp:
        workdir = Path(tmp)
        with (workdir / "services.log").open("w", encoding="utf-8") as log, \
                stacks.environment(tenants.secret_env()), stacks.full_stack(workdir / "stack", log) as stack:
            assert stack.database_url and stack.tenants_file
            tenants.register(stack.database_url, stack.tenants_file)
            figures = measure(stack, webhooks=args.webhooks)
    for figure in figures:
        print(f"{figure.name:<22} {figure.peak_mib:6.0f} MiB  floor {figure.floor_mib:4.0f} MiB ({figure.kind})  "
              f"{figure.peak_mib / figure.floor_mib:5.2f}  {figure.requests} requests", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
