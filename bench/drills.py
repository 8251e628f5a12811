"""`python -m bench.drills` (second half of `make soak`): the fault drills in full, reported.

Runs tests/integration/test_faults.py with CT_DRILL_SCALE=full (a 60 s Postgres outage, 100
webhooks per phase) and a 600 s drain budget; each passed drill appends what it measured to a
report file, printed here and appended to docs/soak.md. Exit status is pytest's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cli, soak_doc
from ops.stack import ROOT

DRILLS = "tests/integration/test_faults.py"


def run(write: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="ct-drills-") as tmp:
        report = Path(tmp) / "drills.jsonl"
        env = {**os.environ, "CT_DRILL_SCALE": "full", "CT_DRILL_DRAIN_SECONDS": "600", "CT_DRILL_REPORT": str(report)}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", DRILLS], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=3600, check=False)
        elapsed = time.monotonic() - started
        facts = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()] \
            if report.exists() else []
    print(done.stdout[-4000:], end="")
    print(done.stderr[-2000:], end="", file=sys.stderr)
    outcome = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"pytest exit {done.returncode}"
    lines = [f"| {f.pop('drill')} | {', '.join(f'{k}={v}' for k, v in f.items())} |" for f in facts]
    section = ("## Fault drills (full form)\n\n"
               f"`{DRILLS}` with CT_DRILL_SCALE=full: **{outcome}** in {elapsed:.0f} s. "
               "Each passed drill's counts (every one of them is asserted exactly by the drill):\n\n"
               "| drill | measured |\n|---|---|\n" + "\n".join(lines) + "\n")
    print("\n" + section)
    if write:
        soak_doc.append(section)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser(__doc__)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/soak.md alone")
    return run(write=not parser.parse_args(argv).no_write)


if __name__ == "__main__":
    raise SystemExit(main())
