"""One look at the system's health: topics, subscriptions and their depth, failures, schema.

Depth is measured where it can be without side effects: dead-letter subscriptions
are peeked (pull, then nack; see ops.deadletters). Push subscriptions are not: a pull
there would spend one of the message's delivery attempts and push it toward the
dead-letter topic. Their backlog is the `num_undelivered_messages` metric in Cloud
Monitoring (the alert policies Terraform creates watch it); locally it is not
measurable and shows as `-`. What locally is measurable: the deliveries the local stack's
pusher (ops/pusher.py) saw fail and that wait for their retry (`.local/deliveries.json`):
how many per subscription, how long the oldest has been failing, and the last answer.
Retries are how delivery works, not a problem in themselves; the events they end in
(`failed` rows, dead letters) are counted as problems below.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ops.context import OpsContext
from ops.deadletters import DEFAULT_MAX_SCAN, Subscription, depth
from ops.pusher import read_snapshot
from ops.stackinfo import local_dir
from shared.db import Database, rows_as_dicts
from shared.migrations import status as migration_status


@dataclass
class Health:
    topics: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    migrations: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "problems": self.problems, "topics": self.topics,
                "subscriptions": self.subscriptions, "failed_events": self.failed, "migrations": self.migrations}


def failed_counts(db: Database) -> list[dict[str, Any]]:
    """Events failed in the last hour and the last day, by type (the partial index on failures serves it)."""
    with db.transaction() as cur:
        cur.execute("SELECT event_type, count(*) FILTER (WHERE updated_at >= now() - interval '1 hour') AS last_hour, "
                    "count(*) AS last_day FROM events WHERE status = 'failed' "
                    "AND updated_at >= now() - interval '1 day' GROUP BY event_type ORDER BY event_type")
        return rows_as_dicts(cur)


def migration_level(db: Database) -> dict[str, Any]:
    states = migration_status(db)
    applied = [s.migration.version for s in states if s.applied]
    return {"level": max(applied) if applied else None,
            "pending": [s.migration.name for s in states if not s.applied],
            "changed": [s.migration.name for s in states if s.changed]}


def check(ctx: OpsContext, max_scan: int = DEFAULT_MAX_SCAN) -> Health:
    health = Health()
    _pubsub(ctx, health, max_scan)
    try:
        health.failed = failed_counts(ctx.database)
        health.migrations = migration_level(ctx.database)
    except Exception as exc:  # the report is the point: a database that cannot answer is one of its lines
        health.problems.append(f"database: {type(exc).__name__}: {str(exc)[:200]}")
        return health
    for row in health.failed:
        if row["last_hour"]:
            health.problems.append(f"{row['last_hour']} {row['event_type']} event(s) failed in the last hour")
    if health.migrations["pending"]:
        health.problems.append(f"migrations pending: {', '.join(health.migrations['pending'])}")
    if health.migrations["changed"]:
        health.problems.append(f"migrations changed since applied: {', '.join(health.migrations['changed'])}")
    return health


def _pubsub(ctx: OpsContext, health: Health, max_scan: int) -> None:
    topic_states = ctx.publisher.check_topics(ctx.topology.event_types)
    snapshot = None if ctx.target.cloud else local_deliveries()
    retrying: dict[str, dict[str, Any]] = (snapshot or {}).get("subscriptions") or {}
    for et in ctx.topology.event_types.values():
        health.topics.append({"event_type": et.name, "topic": et.topic, "state": topic_states[et.name]})
        if topic_states[et.name] != "ok":
            health.problems.append(f"topic {et.topic}: {topic_states[et.name]}")
        for name in et.subscriptions:
            push: dict[str, Any] = {"subscription": name, "kind": "push", "event_type": et.name,
                                    "state": _subscription_state(ctx, name), "depth": None,
                                    "oldest_age_seconds": None}
            if snapshot is not None and push["state"] == "ok":  # locally: what waits for a retry
                seen = retrying.get(name) or {}
                push.update(retrying=int(seen.get("retrying", 0)), failing_seconds=seen.get("oldest_failed_seconds"),
                            last_answer=seen.get("last_answer"))
            health.subscriptions.append(push)
        row: dict[str, Any] = {"subscription": et.dead_letter_subscription, "kind": "dead-letter",
                               "event_type": et.name, "state": _subscription_state(ctx, et.dead_letter_subscription),
                               "depth": None, "oldest_age_seconds": None}
        if row["state"] == "ok":
            found = depth(Subscription(ctx.subscriber, ctx.project, et.dead_letter_subscription,
                                       emulator=bool(ctx.target.emulator_host)), et.name, max_scan)
            row.update(depth=found.depth, oldest_age_seconds=found.oldest_age_seconds)
            if found.depth:
                health.problems.append(f"{found.depth}{'+' if found.capped else ''} dead letter(s) in "
                                       f"{et.dead_letter_subscription}")
        health.subscriptions.append(row)
    for sub in health.subscriptions:
        if sub["state"] != "ok":
            health.problems.append(f"subscription {sub['subscription']}: {sub['state']}")


def _subscription_state(ctx: OpsContext, name: str) -> str:
    try:
        ctx.subscriber.get_subscription(subscription=f"projects/{ctx.project}/subscriptions/{name}", timeout=10)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return "ok"


SNAPSHOT_FRESH_SECONDS = 30.0  # the stack rewrites it every round; older means no stack is pushing


def local_deliveries() -> dict[str, Any] | None:
    """The running local stack's deliveries waiting for a retry (None without a stack pushing)."""
    snapshot = read_snapshot(local_dir() / "deliveries.json")
    if snapshot is None or time.time() - float(snapshot.get("written_at") or 0) > SNAPSHOT_FRESH_SECONDS:
        return None
    return snapshot
