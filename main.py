"""Every deployed function target, so one source archive deploys them all.

Cloud Functions loads this file and asks it for the entry point named in Terraform (the
`entry_point` of each function in shared/topology.json). Each target's module is imported
only when that target is asked for (PEP 562 module `__getattr__`), so a writer's cold start
does not pay for the assistant's OpenAI client or the edge's source parsers.

pydantic reads every installed distribution's metadata for plugins when it compiles its
first model (~15 ms of a cold start); the functions use none, so main.py turns the search
off unless the environment already says otherwise (PYDANTIC_DISABLE_PLUGINS).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

TARGETS: dict[str, str] = {
    "assistant": "functions.assistant",
    "console": "functions.console",
    "conversations_writer": "functions.conversations_writer",
    "events": "functions.events",
    "health": "functions.health",
    "leadgen_fetcher": "functions.leadgen_fetcher",
    "leads": "functions.leads",
    "leads_writer": "functions.leads_writer",
    "obras_writer": "functions.obras_writer",
    "pipeline_writer": "functions.pipeline_writer",
    "reply_sender": "functions.reply_sender",
    "whatsapp": "functions.whatsapp",
}

__all__ = sorted(TARGETS)


def __getattr__(name: str) -> Any:
    """Import the one module that defines `name`, the first time functions-framework asks for it."""
    if name not in TARGETS:
        raise AttributeError(f"module 'main' has no function target {name!r}")
    target = getattr(importlib.import_module(TARGETS[name]), name)
    globals()[name] = target  # later lookups skip this hook
    return target


def __dir__() -> list[str]:
    return sorted({*globals(), *TARGETS})
