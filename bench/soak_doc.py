"""docs/soak.md: what the last `make soak` found — the soak's checks, then the fault drills in full."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench import machine
from ops.stack import ROOT

DOC = ROOT / "docs" / "soak.md"


def start(checks: Sequence[tuple[str, object, object, bool]], summary: Sequence[str], path: Path = DOC) -> None:
    """A fresh docs/soak.md with the machine, the date and the soak's table of checks."""
    rows = "\n".join(f"| {name.strip()} | {expected} | {found} | {'ok' if ok else '**FAILED**'} |"
                     for name, expected, found, ok in checks)
    about = "\n".join(f"* {k}: {v}" for k, v in machine.describe().items())
    lines = "\n".join(f"* {line}" for line in summary)
    path.write_text(
        "# Soak and fault drills\n\n"
        "Written by `make soak` (`python -m bench.soak --write`, `python -m bench.soak_fuzz --write`, then "
        "`python -m bench.drills`); "
        "the tables are the last run's real output.\n\n"
        f"## Machine\n\n{about}\n\n## Soak\n\n{lines}\n\n"
        f"| check | expected | found | result |\n|---|---:|---:|---|\n{rows}\n",
        encoding="utf-8")


def append(section: str, path: Path = DOC) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write("\n" + section)


def put_section(title: str, body: str, path: Path = DOC) -> None:
    """Replace the `## title` section (up to the next `## `) with `body`, or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Soak and fault drills\n"
    head, marker, rest = text.partition(f"\n## {title}\n")
    tail = rest[rest.find("\n## "):] if marker and "\n## " in rest else ""
    path.write_text(f"{head.rstrip()}\n\n## {title}\n\n{body.strip()}\n{tail}", encoding="utf-8")
