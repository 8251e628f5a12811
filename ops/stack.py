"""The local stack that `make dev` runs: the real parts, wired as in the cloud.

Pub/Sub emulator + Postgres (DATABASE_URL or an embedded pgserver, which records commit
times: track_commit_timestamp) + migrations + every function under functions-framework
on its own port + the topology's topics and subscriptions, pushed to the functions by the
stack's own pusher (ops/pusher.py: Cloud push's behaviour, which the emulator's push lacks).
It describes itself in `.local/stack.json` while it runs and stops everything it started on Ctrl-C.

Where the local parts would lose what the cloud keeps, the stack makes up for it: a
function server that dies is restarted with backoff (the emulator holds its backlog only
in memory, so stopping the stack would lose what was answered 202); the pushes it refused
meanwhile are retried with backoff, as Cloud push retries them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from ops.localdb import ensure_database, record_commit_times, start_embedded
from ops.pusher import Pusher
from ops.stackinfo import ROOT as ROOT  # re-exported: tests and benchmarks take the repository's root from here
from ops.stackinfo import StackError, local_dir, port_for
from shared.config import DEFAULT_PROJECT
from shared.db import Database
from shared.migrations import migrate
from shared.topology import Topology, load_topology

DEFAULT_EMULATOR_PORT = 8085
DEFAULT_EVENTS_API_KEY = "dev-events-key"  # local only; the cloud reads it from Secret Manager
DB_NAME = "control_tower"
RESTART_BACKOFF_SECONDS = (1.0, 30.0)  # first and longest wait before restarting a function that died
STEADY_SECONDS = 60.0  # up this long, a restarted function's backoff starts again from the first wait


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"{what} did not come up within {timeout:.0f} s")


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, for stacks started beside others.

    Chosen below the kernel's ephemeral range (32768+ on Linux): a port from that range
    can be taken as the source port of any outgoing connection (the Pub/Sub client's,
    say) before the function that was given it binds it. Never the same port twice
    per process.
    """
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise StackError("no free loopback port between 20000 and 32000")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def emulator_command(port: int, project: str) -> list[str]:
    """The emulator's start command, or a StackError that says how to install it."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise StackError("gcloud is not installed. Install the Google Cloud CLI "
                         "(https://cloud.google.com/sdk/docs/install), then: "
                         "gcloud components install beta pubsub-emulator "
                         "(or apt-get install google-cloud-cli-pubsub-emulator)")
    if shutil.which("java") is None:
        raise StackError("the Pub/Sub emulator needs Java 11+ on PATH (apt-get install default-jre-headless)")
    sdk_root = Path(gcloud).resolve().parent.parent
    candidates = [sdk_root / "platform" / "pubsub-emulator", Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator")]
    if not any(c.exists() for c in candidates):
        raise StackError("the Pub/Sub emulator is not installed: gcloud components install pubsub-emulator "
                         "(or apt-get install google-cloud-cli-pubsub-emulator)")
    return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
            f"--project={project}", "--quiet"]


@dataclass
class Stack:
    """Start with `start()`, stop with `stop()`; or use as a context manager."""

    project: str = field(default_factory=lambda: os.environ.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT)
    topology: Topology = field(default_factory=load_topology)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    database_url: str | None = None
    emulator_host: str | None = None
    function_urls: dict[str, str] = field(default_factory=dict)
    tenants_file: Path | None = None
    started_at: float = field(default_factory=time.time)
    pusher: Pusher | None = None
    _pg: Any = None
    _print_lock: threading.Lock = field(default_factory=threading.Lock)
    _specs: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    _restart_due: dict[str, float] = field(default_factory=dict)  # a dead function -> when to start it again
    _backoff: dict[str, float] = field(default_factory=dict)  # its last wait (doubles while it keeps dying)
    _spawned_at: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start -------------------------------------------------------------
    def start(self) -> None:
        try:
            self._start_emulator()
            self._start_database()
            self._start_functions()
            self.deliver()
            self._write_description()
        except BaseException:
            self.stop()
            raise

    def start_emulator(self) -> None:
        """Only the Pub/Sub emulator (benchmarks and drills that need no database)."""
        self._start_emulator()

    def serve(self, name: str, target: str, source: Path, port: int, env: dict[str, str]) -> str:
        """Serve one function target with functions-framework, as the stack does; returns its URL."""
        cmd = [sys.executable, "-m", "functions_framework", "--target", target,
               "--source", str(source), "--host", "127.0.0.1", "--port", str(port)]
        self._spawn(name, cmd, env)
        self.function_urls[name] = f"http://127.0.0.1:{port}"
        wait_until(lambda: port_open(port), 60, f"function {name}")
        return self.function_urls[name]

    def _start_emulator(self) -> None:
        port = port_for("pubsub", DEFAULT_EMULATOR_PORT)
        if port_open(port):
            raise StackError(f"port {port} is taken (another stack?); set CT_PORT_PUBSUB to use another")
        self._spawn("pubsub-emulator", emulator_command(port, self.project), {})
        self.emulator_host = f"127.0.0.1:{port}"
        wait_until(lambda: _http_ok(f"http://{self.emulator_host}/"), 60, "the Pub/Sub emulator")
        os.environ["PUBSUB_EMULATOR_HOST"] = self.emulator_host

    def _start_database(self) -> None:
        url = os.environ.get("DATABASE_URL")
        if not url:
            self._pg = start_embedded(local_dir() / "pgdata")
            record_commit_times(self._pg)
            url = ensure_database(self._pg.get_uri(), DB_NAME)
        self.database_url = url
        db = Database.for_url(url, size=1)
        try:
            applied = migrate(db)
            from ops.tenants import prepare_local

            self.tenants_file = prepare_local(db, local_dir())  # what the edge reads: tenants never from the DB
            from ops.console_demo import seed_demo  # the console's demo login and session key (.local/console.json)

            os.environ.update(seed_demo(db, local_dir(), say=lambda text: self._say("console", text)))
        finally:
            db.close()
        self._say("stack", f"database ready ({len(applied)} migration(s) applied)")

    def _start_functions(self) -> None:
        env = {
            "PUBSUB_EMULATOR_HOST": self.emulator_host or "",
            "GOOGLE_CLOUD_PROJECT": self.project,
            "DATABASE_URL": self.database_url or "",
            "EVENTS_API_KEY": os.environ.get("EVENTS_API_KEY", DEFAULT_EVENTS_API_KEY),
            "TENANTS_FILE": str(self.tenants_file or ""),
            # The assistant: OPENAI_BASE_URL, provider send URLs (EVOLUTION_API_URL, ZAPI_API_URL,
            # META_GRAPH_BASE_URL) and ASSISTANT_SETTLE_SECONDS pass through from this environment.
            "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "local-dummy-key"),
            # Locally the assistant answers only when OpenAI is configured (a key or a base URL).
            "ASSISTANT_ENABLED": os.environ.get("ASSISTANT_ENABLED") or (
                "true" if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL") else "false"),
            "PYTHONUNBUFFERED": "1",
            "THREADS": os.environ.get("THREADS", "8"),
        }
        for fn in self.topology.functions.values():
            port = port_for(fn.name, fn.local_port)
            if port_open(port):
                raise StackError(f"port {port} for {fn.name} is taken; set CT_PORT_{fn.name.upper()}")
            cmd = [sys.executable, "-m", "functions_framework", "--target", fn.entry_point,
                   "--source", str(ROOT / "main.py"), "--host", "127.0.0.1", "--port", str(port)]
            self._spawn(fn.name, cmd, env)
            self.function_urls[fn.name] = f"http://127.0.0.1:{port}"
        for name, url in self.function_urls.items():
            port = int(url.rsplit(":", 1)[1])
            wait_until(lambda p=port: port_open(p), 60, f"function {name}")  # type: ignore[misc]

    def deliver(self) -> None:
        """Create the topics and subscriptions, and start pushing them to `function_urls`."""
        from ops.provision import provision

        routes = provision(self.project, self.topology, self.function_urls)
        self.pusher = Pusher(self.project, routes, threads=int(os.environ.get("THREADS", "8")))
        self.pusher.start()
        self._say("stack", f"Pub/Sub ready: {len(routes)} subscriptions pushed to their functions")

    def _write_description(self) -> None:
        path = local_dir() / "stack.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.description(), indent=2) + "\n", encoding="utf-8")
        lines = [f"  {name:<22} {url}" for name, url in self.function_urls.items()]
        self._say("stack", "up. Functions:\n" + "\n".join(lines) +
                  f"\n  pubsub emulator        {self.emulator_host}\n  database               {self.database_url}"
                  f"\n  described in           {path}\nCtrl-C stops everything.")

    def description(self) -> dict[str, Any]:
        return {"project": self.project, "pubsub_emulator_host": self.emulator_host,
                "database_url": self.database_url, "functions": dict(self.function_urls),
                "started_at": self.started_at, "deliveries": str(local_dir() / "deliveries.json")}

    # -- keeping it up -------------------------------------------------------
    def supervise(self, now: float | None = None) -> list[str]:
        """One round: restart dead function servers (with backoff), write what waits for a retry.

        Returns the names of parts that died and cannot be restarted (the emulator): the
        stack must stop, and says why.
        """
        now = time.monotonic() if now is None else now
        fatal = []
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                if now - self._spawned_at.get(name, now) >= STEADY_SECONDS:
                    self._backoff.pop(name, None)
                continue
            if name not in self.topology.functions:
                fatal.append(name)
            elif name not in self._restart_due:  # just died: wait, longer each time it dies again soon
                backoff = min(self._backoff.get(name, RESTART_BACKOFF_SECONDS[0] / 2) * 2, RESTART_BACKOFF_SECONDS[1])
                self._backoff[name] = backoff
                self._restart_due[name] = now + backoff
                self._say("stack", f"{name} exited with code {proc.returncode}; restarting it in {backoff:.0f} s "
                                   "(Pub/Sub keeps its messages meanwhile)")
            elif now >= self._restart_due[name]:
                del self._restart_due[name]
                cmd, env = self._specs[name]
                self._spawn(name, cmd, env)
                self._spawned_at[name] = now
        if self.pusher is not None:
            with contextlib.suppress(OSError):
                self.pusher.write(local_dir() / "deliveries.json")
        return fatal


    # -- processes ---------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self._specs[name] = (cmd, env)
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, start_new_session=True, cwd=ROOT)
        self.processes[name] = proc
        threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()

    def _pump(self, name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._say(name, line.rstrip("\n"))

    def _say(self, name: str, text: str) -> None:
        with self._print_lock:
            for line in text.splitlines() or [""]:
                print(f"[{name}] {line}", file=self.out, flush=True)

    def stop(self) -> None:
        if self.pusher is not None:  # first: nothing is pushed to a function being stopped
            self.pusher.stop()
            self.pusher = None
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        self.processes.clear()
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
        (local_dir() / "stack.json").unlink(missing_ok=True)
        (local_dir() / "deliveries.json").unlink(missing_ok=True)


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False


class Supervised(Protocol):
    """What `run_forever` runs: the local stack, or another built on it (ops.cloudlocal)."""

    def start(self) -> None: ...

    def supervise(self) -> list[str]: ...

    def stop(self) -> None: ...


def run_forever(stack: Supervised | None = None) -> int:
    """`ctower dev`: start, print, wait for Ctrl-C or SIGTERM, stop (`stack`: another one, e.g. cloud mode)."""
    stack = stack or Stack()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()
    except StackError as exc:
        print(f"[stack] cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        while not stopping.wait(0.5):
            fatal = stack.supervise()
            if fatal:
                print(f"[stack] {', '.join(fatal)} exited; stopping the stack (the emulator's messages are "
                      "gone with it)", file=sys.stderr)
                return 1
        return 0
    finally:
        print("[stack] stopping...", file=sys.stderr)
        stack.stop()
        print("[stack] stopped", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(run_forever())
