"""`ctower events`: failed events in the ledger, and their replay (logic in ops.replay)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from ops import audit, replay
from ops.clikit import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    F,
    emit,
    fail,
    json_option,
    ops_context,
    table,
    target_options,
)
from ops.context import operator_name
from ops.deadletters import parse_duration


def parse_since(text: str | None) -> datetime | None:
    """An age (`2h`, `1d`) or an ISO time (`2025-01-31T12:00:00Z`)."""
    if not text:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {text!r} is neither an age (2h, 1d) nor an ISO time", EXIT_USAGE)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def selection_options(func: F) -> F:
    func = click.option("--since", metavar="AGE|TIME", help="Failed since: an age (2h, 1d) or an ISO time.")(func)
    func = click.option("--tenant", "tenants", multiple=True, help="Tenant id. Repeatable.")(func)
    func = click.option("--type", "types", multiple=True, metavar="EVENT_TYPE", help="Event type. Repeatable.")(func)
    return func


@click.group("events")
def events() -> None:
    """The event ledger: events whose last attempt failed, and their replay."""


@events.command("failed", epilog=f"Exit 1 when there are failed events. {EXIT_CODES}")
@selection_options
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@target_options
@json_option
def failed(types: tuple[str, ...], tenants: tuple[str, ...], since: str | None, limit: int, project: str | None,
           database_url: str | None, as_json: bool) -> None:
    """Events with status failed (newest first): type, attempts, last error."""
    moment = parse_since(since)
    with ops_context(project, database_url, need_pubsub=False) as ctx:
        rows = replay.failed_events(ctx.database, event_types=types, tenants=tenants, since=moment, limit=limit)
    emit(rows, as_json, table(rows, ["updated_at", "event_type", "tenant", "event_id", "correlation_id", "attempts",
                                     "last_error"], empty="no failed events"))
    sys.exit(EXIT_PROBLEMS if rows else EXIT_OK)


@events.command("replay", epilog="Exit 0 when every event was republished; 1 when one was not found, not failed "
                                 f"or not confirmed; 2 without EVENT_IDs or --all-failed. {EXIT_CODES}")
@click.argument("event_ids", nargs=-1, metavar="[EVENT_ID]...")
@click.option("--all-failed", is_flag=True, help="Every failed event matching --type/--tenant/--since.")
@selection_options
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="With --all-failed: at most this many.")
@click.option("--dry-run", is_flag=True, help="Only say what would be republished.")
@click.option("--operator", help="Who runs this, for the audit record.")
@target_options
@json_option
def replay_command(event_ids: tuple[str, ...], all_failed: bool, types: tuple[str, ...], tenants: tuple[str, ...],
                   since: str | None, limit: int, dry_run: bool, operator: str | None, project: str | None,
                   database_url: str | None, as_json: bool) -> None:
    """Republish failed events from their stored envelope (same event_id and correlation_id).

    The message carries the attribute replayed=true. Use it when the dead letter is
    gone (purged, or past Pub/Sub's 7-day retention); while it is still in the
    dead-letter subscription, `ctower dlq redrive` is the way.
    """
    if bool(event_ids) == all_failed:
        fail("give EVENT_IDs or --all-failed (not both)", EXIT_USAGE)
    if event_ids and (types or tenants or since):
        fail("--type, --tenant and --since select events only with --all-failed", EXIT_USAGE)
    moment = parse_since(since)
    with ops_context(project, database_url) as ctx:
        ids = list(event_ids) or [r["event_id"] for r in replay.failed_events(
            ctx.database, event_types=types, tenants=tenants, since=moment, limit=limit)]
        run_id = audit.start_run(ctx.database, "events replay", operator_name(operator, ctx.target), ctx.target.label,
                                 {"event_ids": list(event_ids), "all_failed": all_failed, "event_types": list(types),
                                  "tenants": list(tenants), "since": moment}, dry_run)
        report = audit.RunReport()
        try:
            replay.replay(ctx.database, ctx.publisher, ids, dry_run=dry_run, report=report)
        finally:
            audit.finish_run(ctx.database, run_id, report)
    label = "would replay" if dry_run else "replayed"
    emit({"run_id": run_id, **report.as_dict()}, as_json,
         [f"audit run {run_id}: {label} {report.would_move if dry_run else report.moved}, "
          f"skipped {report.skipped}, failed {report.failed}",
          table(report.items, ["outcome", "event_id", "correlation_id", "reason"], empty="")])
    sys.exit(EXIT_OK if report.status == "ok" and not report.skipped else EXIT_PROBLEMS)
