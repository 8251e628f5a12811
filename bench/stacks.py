"""The local stack's real parts, started by the harness on free loopback ports in a work dir.

`emulator()` is the Pub/Sub emulator alone (with the topology's topics); `full_stack()` is
what `make dev` runs (ops.stack.Stack: emulator, its own pgserver Postgres, migrations,
every function under functions-framework/gunicorn, subscriptions and the pusher). Both stop every
process they started (process groups), whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ops.stack import Stack, free_port
from shared.topology import load_topology


@contextmanager
def environment(values: dict[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    """Set (and drop) environment variables for the block, then put everything back."""
    saved = dict(os.environ)
    for name in drop:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stack_env(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """CT_LOCAL_DIR, a project of its own and a free port for the emulator and every function."""
    env = {"CT_LOCAL_DIR": str(workdir), "GOOGLE_CLOUD_PROJECT": f"ct-bench-{uuid.uuid4().hex[:6]}",
           "CT_PORT_PUBSUB": str(free_port())}
    for name in load_topology().functions:
        env[f"CT_PORT_{name.upper()}"] = str(free_port())
    return {**env, **(extra or {})}


@contextmanager
def emulator(workdir: Path, log: TextIO) -> Iterator[Stack]:
    """The Pub/Sub emulator with a topic per event type (no subscriptions: publishes are not consumed)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with environment(stack_env(workdir), drop=("PUBSUB_EMULATOR_HOST",)):
        stack = Stack(out=log)
        try:
            stack.start_emulator()
            create_topics(stack.project, [et.topic for et in stack.topology.event_types.values()])
            yield stack
        finally:
            stack.stop()


def create_topics(project: str, topics: list[str]) -> None:
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    for topic in topics:
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=publisher.topic_path(project, topic))


def _supervise(stack: Stack, stopping: threading.Event) -> None:
    while not stopping.wait(0.5):
        stack.supervise()


# The assistant answers leads through OpenAI and the WhatsApp send APIs, which cannot be reached from here;
# left on, its failing calls and their retries would load the machine. Load runs measure intake without it
# (as the session test stack does); tests/integration/test_assistant.py covers it with stand-ins.
INTAKE_ONLY = {"ASSISTANT_ENABLED": "false"}


@contextmanager
def full_stack(workdir: Path, log: TextIO, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The whole local stack with its own Postgres under `workdir` (DATABASE_URL is ignored)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = stack_env(workdir, {**INTAKE_ONLY, **(extra_env or {})})
    with environment(env, drop=("PUBSUB_EMULATOR_HOST", "DATABASE_URL")):
        stack = Stack(out=log)
        stopping = threading.Event()
        # As `ctower dev` does: restart a function that dies, write the pusher's retries for `ctower status`.
        supervisor = threading.Thread(target=_supervise, args=(stack, stopping), daemon=True)
        try:
            stack.start()
            supervisor.start()
            yield stack
        finally:
            stopping.set()
            if supervisor.is_alive():
                supervisor.join(timeout=60)
            stack.stop()
