"""The `ops_audit` trail: who moved or dropped which messages, when, with what filter.

A run's row is written before it touches anything and completed when it ends, so a
run killed midway still says who started what (status stays `running`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.db import Database, rows_as_dicts


@dataclass
class RunReport:
    """Counts and per-message outcomes of one redrive, purge or replay run."""

    matched: int = 0
    moved: int = 0
    would_move: int = 0
    skipped: int = 0
    failed: int = 0
    stopped_early: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed or self.stopped_early:
            return "partial" if self.moved else "failed"
        return "ok"

    def note(self, outcome: str, event_id: str | None, correlation_id: str | None, **extra: Any) -> None:
        self.items.append({"outcome": outcome, "event_id": event_id, "correlation_id": correlation_id, **extra})

    def counts(self) -> dict[str, int]:
        return {"matched": self.matched, "moved": self.moved, "would_move": self.would_move,
                "skipped": self.skipped, "failed": self.failed}

    def as_dict(self) -> dict[str, Any]:
        return {**self.counts(), "status": self.status, "stopped_early": self.stopped_early,
                "errors": self.errors, "items": self.items}


def start_run(db: Database, command: str, operator: str, target: str, filters: dict[str, Any],
              dry_run: bool = False) -> int:
    with db.transaction() as cur:
        cur.execute("INSERT INTO ops_audit (command, operator, target, filter, dry_run) "
                    "VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING id",
                    (command, operator, target, json.dumps(filters, default=str), dry_run))
        return int(cur.fetchone()[0])


def finish_run(db: Database, run_id: int, report: RunReport) -> None:
    event_ids = sorted({i["event_id"] for i in report.items if i.get("event_id")})
    correlation_ids = sorted({i["correlation_id"] for i in report.items if i.get("correlation_id")})
    with db.transaction() as cur:
        cur.execute("UPDATE ops_audit SET status = %s, matched = %s, moved = %s, skipped = %s, failed = %s, "
                    "event_ids = %s, correlation_ids = %s, detail = %s::jsonb, finished_at = now() WHERE id = %s",
                    (report.status, report.matched, report.moved, report.skipped, report.failed, event_ids,
                     correlation_ids, json.dumps({"would_move": report.would_move, "errors": report.errors,
                                                  "stopped_early": report.stopped_early, "items": report.items[:500]},
                                                 default=str), run_id))


def runs_for(db: Database, correlation_ids: list[str], event_ids: list[str]) -> list[dict[str, Any]]:
    """Audit rows that touched any of these ids (dry runs moved nothing and are left out)."""
    if not correlation_ids and not event_ids:
        return []
    with db.transaction() as cur:
        cur.execute("SELECT id, command, operator, target, status, moved, skipped, failed, filter, started_at, "
                    "finished_at FROM ops_audit WHERE NOT dry_run AND (correlation_ids && %s::text[] "
                    "OR event_ids && %s::text[]) ORDER BY started_at", (correlation_ids, event_ids))
        return rows_as_dicts(cur)


def recent_runs(db: Database, limit: int = 20) -> list[dict[str, Any]]:
    with db.transaction() as cur:
        cur.execute("SELECT id, command, operator, target, dry_run, status, matched, moved, skipped, failed, "
                    "filter, started_at, finished_at FROM ops_audit ORDER BY id DESC LIMIT %s", (limit,))
        return rows_as_dicts(cur)
