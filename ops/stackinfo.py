"""Where the local stack is found: its folder, its ports, and the description it writes while it runs.

Kept apart from ops/stack.py (which starts and supervises the stack) so that the
commands, the tenants service and the console's demo seed can find a running stack
without importing the code that runs it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """The stack cannot start, or is not running; the message says what to do."""


def local_dir() -> Path:
    return Path(os.environ.get("CT_LOCAL_DIR") or ROOT / ".local")


def port_for(name: str, default: int) -> int:
    return int(os.environ.get(f"CT_PORT_{name.upper()}", default))


def read_description(path: Path | None = None) -> dict[str, Any]:
    """The running stack's `.local/stack.json` (for tools and tests)."""
    path = path or local_dir() / "stack.json"
    if not path.exists():
        raise StackError(f"no running local stack ({path} is missing): start it with `make dev`")
    return dict(json.loads(path.read_text(encoding="utf-8")))
