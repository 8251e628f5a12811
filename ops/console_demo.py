"""The local stack's console login (a demo admin of the `default` tenant), its session key, webhook bases.

Both live in `.local/console.json` (never committed), so a restarted `make dev` keeps the
same password and the browser's session; the password is set again on every start so the
file is always the truth. CONSOLE_SESSION_SECRET from the environment wins.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from ops.stackinfo import port_for
from shared.console.users import UserError, add_user, get_user, reset_password
from shared.db import Database

DEMO_EMAIL = "demo@controltower.local"
DEMO_TENANT = "default"


def seed_demo(db: Database, directory: Path, say: Callable[[str], None] = print) -> dict[str, str]:
    """Make sure the demo user exists with the file's password; returns the console's environment."""
    path = directory / "console.json"
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    saved.setdefault("password", secrets.token_urlsafe(12))
    saved.setdefault("session_secret", secrets.token_urlsafe(48))
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    with db.transaction() as cur:
        if get_user(cur, DEMO_EMAIL) is None:
            try:
                add_user(cur, email=DEMO_EMAIL, name="Demo Admin", role="admin", tenant=DEMO_TENANT,
                         password=saved["password"])
            except UserError as exc:
                say(f"demo user not made: {exc}")
                return {}
        else:
            reset_password(cur, DEMO_EMAIL, saved["password"])
    say(f"console login: {DEMO_EMAIL}, password in {path}")
    return {"CONSOLE_SESSION_SECRET": os.environ.get("CONSOLE_SESSION_SECRET") or saved["session_secret"],
            **webhook_bases()}


def webhook_bases() -> dict[str, str]:
    """The local whatsapp/leads URLs, for the webhook addresses on the console's settings page."""
    from shared.topology import load_topology

    functions = load_topology().functions
    return {f"CONSOLE_{name.upper()}_URL": f"http://127.0.0.1:{port_for(name, functions[name].local_port)}"
            for name in ("whatsapp", "leads")}
