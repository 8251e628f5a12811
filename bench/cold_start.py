"""Cold start: import-and-ready time of each deployed target, in a fresh interpreter each run.

Ready = functions-framework built the app from `main.py` (what Cloud Functions loads) and
the clients the target needs exist: the Pub/Sub publisher for HTTP targets, the pool and
the pg8000 driver for writers, and for the assistant the OpenAI client too (most of its
messages reach the model, so its first one would pay for it). The floor is
functions-framework building an app for a function that imports nothing, plus those same
clients and nothing else.

Each run sets PYTHONDONTWRITEBYTECODE, so no run warms the next; but site-packages hold the
bytecode pip compiled at install, while the project's own modules would be compiled from
source on every run (~100 ms for the edge), which no deployed function does: Cloud Functions'
Python build runs `python3 -m compileall -f -q .` over the source before it is deployed
(GoogleCloudPlatform/buildpacks, cmd/python/functions_framework/lib/lib.go). So
`measure` compiles the project (and the floor's file) once before timing, as that build does;
the floor is untouched and every timed run still starts a fresh interpreter.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ops.stack import ROOT, free_port
from shared.topology import load_topology
from tests.traffic.stats import median

FLOOR_SOURCE = Path(__file__).with_name("floor_functions.py")

_SCRIPT = """
import sys, time
t0 = time.perf_counter()
import functions_framework
app = functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
kind = sys.argv[3]
if kind == "http":
    from shared.publisher import get_publisher
    get_publisher().client
elif kind == "writer":
    from shared.db import get_database
    get_database()
    import pg8000.dbapi
elif kind == "assistant":
    from shared.db import get_database
    get_database()
    import pg8000.dbapi
    from shared.assistant.llm import get_model
    get_model().client
elif kind == "floor-http":
    from google.cloud import pubsub_v1
    pubsub_v1.PublisherClient()
elif kind == "floor-writer":
    import pg8000.dbapi
elif kind == "floor-assistant":
    import pg8000.dbapi
    from openai import OpenAI
    OpenAI(api_key="bench", max_retries=0)
print(time.perf_counter() - t0)
"""


@dataclass(frozen=True)
class ColdStart:
    target: str
    kind: str  # http | writer | assistant
    median_s: float
    floor_s: float
    runs: int


def time_once(target: str, source: Path, kind: str) -> float:
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}",  # a client, never a connection
           "GOOGLE_CLOUD_PROJECT": "ct-bench-cold", "PYTHONDONTWRITEBYTECODE": "1",
           "OPENAI_API_KEY": "bench-placeholder"}  # the client is made, never called
    out = subprocess.run([sys.executable, "-c", _SCRIPT, target, str(source), kind], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def compile_project() -> None:
    """Bytecode for the deployed source, as the deployed build makes it (only what changed is recompiled)."""
    for directory in ("functions", "shared"):
        compileall.compile_dir(ROOT / directory, quiet=1)
    for file in (ROOT / "main.py", FLOOR_SOURCE):
        compileall.compile_file(file, quiet=1)


def measure(runs: int = 5) -> list[ColdStart]:
    compile_project()
    topology = load_topology()
    floors: dict[str, list[float]] = {kind: [] for kind in _KINDS}
    samples: dict[str, list[float]] = {name: [] for name in topology.functions}
    for _ in range(runs):  # interleaved, so a noisy moment hits targets and floors alike
        for kind, floor in _KINDS.items():
            floors[kind].append(time_once(floor, FLOOR_SOURCE, f"floor-{kind}"))
        for fn in topology.functions.values():
            samples[fn.name].append(time_once(fn.entry_point, ROOT / "main.py", _kind(fn.name, fn.trigger)))
    return [ColdStart(fn.name, kind, median(samples[fn.name]), median(floors[kind]), runs)
            for fn in topology.functions.values() for kind in [_kind(fn.name, fn.trigger)]]


# kind -> the floor function served for it (the assistant's floor is the writer's, plus the OpenAI client)
_KINDS = {"http": "floor_publish", "writer": "floor_writer", "assistant": "floor_writer"}


def _kind(function: str, trigger: str) -> str:
    if function == "assistant":
        return "assistant"
    return "http" if trigger == "http" else "writer"


def import_profile(target: str = "whatsapp", kind: str = "http", top: int = 8) -> list[tuple[float, str]]:
    """The slowest imports (cumulative ms) when loading `main.py` for a target: `python -X importtime`."""
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}", "GOOGLE_CLOUD_PROJECT": "ct-bench"}
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", _SCRIPT, target, str(ROOT / "main.py"), kind],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    rows: list[tuple[float, str]] = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if len(name) - len(name.lstrip()) <= 1:  # top-level imports only (nested ones are indented)
            rows.append((int(cumulative) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]
