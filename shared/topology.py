"""The event topology: event types, their topics, dead-letter topics and subscribers.

`topology.json` beside this module is the one source of truth; Terraform reads the
same file with `jsondecode(file(...))`, so adding an event type is one entry there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

TOPOLOGY_FILE = Path(__file__).with_name("topology.json")


@dataclass(frozen=True)
class EventType:
    name: str
    topic: str
    dead_letter_topic: str
    dead_letter_subscription: str
    subscriptions: dict[str, str]  # push subscription name -> subscriber function


@dataclass(frozen=True)
class Function:
    name: str
    entry_point: str
    trigger: str  # "http" or "pubsub"
    public: bool
    publishes: tuple[str, ...]
    local_port: int
    # Deployed settings beyond the common ones (Terraform sets them; the code reads them):
    env: dict[str, str] = field(default_factory=dict)  # ENV -> name of the Terraform setting it carries
    secret_names: dict[str, str] = field(default_factory=dict)  # ENV -> secret whose NAME it carries (read at run time)
    mounted_secrets: dict[str, str] = field(default_factory=dict)  # ENV -> secret whose VALUE Cloud Run mounts
    reads_sender_secrets: bool = False  # may read the providers' send credentials (reply_sender)

    @property
    def secrets(self) -> set[str]:
        """The module secrets this function reads, by name or mounted."""
        return set(self.secret_names.values()) | set(self.mounted_secrets.values())


@dataclass(frozen=True)
class Topology:
    event_types: dict[str, EventType]
    functions: dict[str, Function]

    def event_type(self, name: str) -> EventType:
        try:
            return self.event_types[name]
        except KeyError:
            raise KeyError(f"unknown event type {name!r}; known: {sorted(self.event_types)}") from None

    def subscribed_event_types(self, function: str) -> set[str]:
        """Event types whose topics push to `function`."""
        return {et.name for et in self.event_types.values() if function in et.subscriptions.values()}

    def event_type_for_topic(self, topic: str) -> EventType | None:
        for et in self.event_types.values():
            if topic in (et.topic, et.dead_letter_topic):
                return et
        return None


def parse_topology(raw: dict[str, Any]) -> Topology:
    event_types = {
        name: EventType(
            name=name,
            topic=spec["topic"],
            dead_letter_topic=spec["dead_letter_topic"],
            dead_letter_subscription=spec["dead_letter_subscription"],
            subscriptions=dict(spec["subscriptions"]),
        )
        for name, spec in raw["event_types"].items()
    }
    functions = {
        name: Function(
            name=name,
            entry_point=spec["entry_point"],
            trigger=spec["trigger"],
            public=bool(spec["public"]),
            publishes=tuple(spec["publishes"]),
            local_port=int(spec["local_port"]),
            env=dict(spec.get("env", {})),
            secret_names=dict(spec.get("secret_names", {})),
            mounted_secrets=dict(spec.get("mounted_secrets", {})),
            reads_sender_secrets=bool(spec.get("reads_sender_secrets", False)),
        )
        for name, spec in raw["functions"].items()
    }
    topology = Topology(event_types=event_types, functions=functions)
    _check(topology)
    return topology


def _check(topology: Topology) -> None:
    """Fail fast on a topology that would deploy but never deliver."""
    names: list[str] = []
    for et in topology.event_types.values():
        names += [et.topic, et.dead_letter_topic, et.dead_letter_subscription, *et.subscriptions]
        for subscriber in et.subscriptions.values():
            fn = topology.functions.get(subscriber)
            if fn is None or fn.trigger != "pubsub":
                raise ValueError(f"{et.name}: subscriber {subscriber!r} is not a pubsub function")
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ValueError(f"topology names used twice: {sorted(duplicated)}")
    too_short = [n for n in names if len(n) < 3]
    if too_short:
        raise ValueError(f"Pub/Sub resource ids need at least 3 characters: {too_short}")
    for fn in topology.functions.values():
        unknown = set(fn.publishes) - set(topology.event_types)
        if unknown:
            raise ValueError(f"function {fn.name} publishes unknown event types {sorted(unknown)}")


@lru_cache(maxsize=1)
def load_topology() -> Topology:
    return parse_topology(json.loads(TOPOLOGY_FILE.read_text(encoding="utf-8")))
