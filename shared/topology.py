"""The event topology: event types, their topics, dead-letter topics and subscribers.

`topology.json` beside this module is the one source of truth; Terraform reads the
same file with `jsondecode(file(...))`, so adding an event type is one entry there.
A subscription may carry its own `retry_policies` entry (the assistant's waits out a
model outage of hours); the others take the deployment's defaults.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

TOPOLOGY_FILE = Path(__file__).with_name("topology.json")


@dataclass(frozen=True)
class RetryPolicy:
    """A push subscription's own retry and dead-letter budget (Pub/Sub limits: 0..600 s, 5..100 attempts)."""

    minimum_backoff_seconds: int
    maximum_backoff_seconds: int
    max_delivery_attempts: int

    @classmethod
    def parse(cls, where: str, raw: dict[str, Any]) -> RetryPolicy:
        def seconds(key: str) -> int:
            text = str(raw.get(key, ""))
            if not re.fullmatch(r"\d+s", text) or int(text[:-1]) > 600:
                raise ValueError(f"{where}.{key} must be like \"10s\", at most 600s (got {text!r})")
            return int(text[:-1])

        policy = cls(seconds("minimum_backoff"), seconds("maximum_backoff"), int(raw.get("max_delivery_attempts", 0)))
        if policy.minimum_backoff_seconds > policy.maximum_backoff_seconds:
            raise ValueError(f"{where}: minimum_backoff is above maximum_backoff")
        if not 5 <= policy.max_delivery_attempts <= 100:
            raise ValueError(f"{where}.max_delivery_attempts must be 5..100")
        return policy

    def budget_seconds(self) -> int:
        """How long a message keeps being retried before it is dead-lettered (exponential backoff, capped)."""
        total, wait = 0, max(1, self.minimum_backoff_seconds)
        for _ in range(self.max_delivery_attempts - 1):
            total += min(wait, self.maximum_backoff_seconds)
            wait *= 2
        return total


@dataclass(frozen=True)
class EventType:
    name: str
    topic: str
    dead_letter_topic: str
    dead_letter_subscription: str
    subscriptions: dict[str, str]  # push subscription name -> subscriber function
    retry_policies: dict[str, RetryPolicy] = field(default_factory=dict)  # subscription -> its own policy


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
    min_timeout_seconds: int = 0  # waits inside a request: the deployed timeout may not be shorter
    # An HTTP function that reads the database (the console) logs in as its own IAM database user,
    # member of this database role only; subscribers use the writer's (or their isolated) user.
    database_role: str | None = None

    @property
    def uses_database(self) -> bool:
        return self.trigger == "pubsub" or self.database_role is not None

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
            retry_policies={sub: RetryPolicy.parse(f"{name}.retry_policies.{sub}", policy)
                            for sub, policy in (spec.get("retry_policies") or {}).items()},
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
            min_timeout_seconds=int(spec.get("min_timeout_seconds", 0)),
            database_role=spec.get("database_role"),
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
        unknown_policies = set(et.retry_policies) - set(et.subscriptions)
        if unknown_policies:
            raise ValueError(f"{et.name}: retry_policies for unknown subscriptions {sorted(unknown_policies)}")
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
