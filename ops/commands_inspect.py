"""`ctower trace`, `ctower status`, `ctower audit`: read-only looks at the system."""

from __future__ import annotations

import sys

import click

from ops import audit, status, trace
from ops.clikit import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PROBLEMS,
    emit,
    human_age,
    json_option,
    ops_context,
    table,
    target_options,
)
from ops.deadletters import DEFAULT_MAX_SCAN


@click.command("trace", epilog=f"Exit 1 when nothing is found. {EXIT_CODES}")
@click.argument("identifier", metavar="ID")
@click.option("--show-pii", is_flag=True, help="Print phones, e-mails and message bodies unmasked.")
@click.option("--logs/--no-logs", "with_logs", default=True, show_default=True,
              help="Against the cloud: the functions' log lines for these requests, from Cloud Logging.")
@click.option("--logs-limit", type=click.IntRange(min=1), default=trace.LOG_LIMIT, show_default=True,
              help="Show at most this many log lines (oldest first).")
@target_options
@json_option
def trace_command(identifier: str, show_pii: bool, with_logs: bool, logs_limit: int, project: str | None,
                  database_url: str | None, as_json: bool) -> None:
    """The timeline of a correlation_id, event_id, lead id or phone.

    Events (status, attempts, last error), the rows written (lead, conversation,
    messages, stage moves, proposals, obras) and the redrives and replays that touched
    them. Against the cloud it adds the functions' log lines from Cloud Logging (within
    15 minutes before the first event and 2 hours after the last) and prints the filter
    and a ready `gcloud logging read` command.
    """
    with ops_context(project, database_url, need_pubsub=False) as ctx:
        found = trace.trace(ctx.database, identifier, show_pii=show_pii)
        cloud = ctx.target.cloud
        project_id = ctx.project
    logs_problem = None
    if cloud and with_logs and found.correlation_ids:
        since, until = found.log_window()
        try:
            found.logs = trace.read_logs(project_id, found.correlation_ids, since, until, logs_limit)
        except Exception as exc:  # the database timeline stands on its own; say why the logs are missing
            logs_problem = f"Cloud Logging not read: {type(exc).__name__}: {str(exc)[:200]}"
    data = found.as_dict()
    if cloud and found.correlation_ids:
        data["logging_filter"] = trace.logging_filter(found.correlation_ids)
        data["gcloud"] = trace.gcloud_command(found.correlation_ids, project_id)
        data["logs_problem"] = logs_problem
    if not found.found:
        emit(data, as_json, f"nothing found for {identifier!r} (tried correlation_id, event_id, lead id, phone)")
        sys.exit(EXIT_PROBLEMS)
    lines = [f"{found.kind} {found.query}: {len(found.events)} event(s), {len(found.rows)} row(s), "
             f"{len(found.redrives)} redrive/replay run(s)" + (f", {len(found.logs)} log line(s)" if cloud else "")]
    if found.lead_ids:
        lines.append(f"lead(s): {', '.join(found.lead_ids)}")
    lines += ["", table(found.timeline(), ["at", "what", "correlation_id", "detail"], uncut=["detail"])]
    if "gcloud" in data:
        lines += ["", f"Cloud Logging filter:  {data['logging_filter']}", f"logs:  {data['gcloud']}"]
        if logs_problem:
            lines.append(logs_problem)
    emit(data, as_json, lines)
    sys.exit(EXIT_OK)


@click.command("status", epilog="Dead-letter depth comes from a peek (pull, then nack); push subscriptions are not "
                                "peeked (that would spend a delivery attempt), their backlog is Cloud Monitoring's "
                                "num_undelivered_messages; locally `retrying` is how many deliveries the stack's "
                                "pusher saw fail and will retry. Exit 1 when there are problems: a missing topic or "
                                "subscription, dead letters, failures in the last hour, pending or changed "
                                f"migrations. {EXIT_CODES}")
@click.option("--max-scan", type=click.IntRange(min=1), default=DEFAULT_MAX_SCAN, show_default=True,
              help="Count at most this many dead letters per subscription.")
@target_options
@json_option
def status_command(max_scan: int, project: str | None, database_url: str | None, as_json: bool) -> None:
    """Health: topics, subscriptions and dead-letter depth, failed events by type, migration level."""
    with ops_context(project, database_url) as ctx:
        health = status.check(ctx, max_scan)
        label = ctx.target.label
    level = health.migrations.get("level")
    lines = [f"target {label}: {'OK' if not health.problems else 'PROBLEMS'}"]
    lines += [f"  ! {p}" for p in health.problems]
    lines += ["", table(health.topics, ["event_type", "topic", "state"]), "",
              table([{**s, "depth": s["depth"] if s["depth"] is not None else "-",
                      "oldest": human_age(s["oldest_age_seconds"]), "retrying": s.get("retrying", "-")}
                     for s in health.subscriptions],
                    ["subscription", "kind", "event_type", "state", "depth", "oldest", "retrying"]), "",
              "failed events:", table(health.failed, ["event_type", "last_hour", "last_day"],
                                      empty="  none in the last day"),
              "", f"schema: migration level {level if level is not None else '-'}"
                  + "".join(f", pending {name}" for name in health.migrations.get("pending", []))]
    emit({"target": label, **health.as_dict()}, as_json, lines)
    sys.exit(EXIT_PROBLEMS if health.problems else EXIT_OK)


@click.command("audit", epilog=EXIT_CODES)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@target_options
@json_option
def audit_command(limit: int, project: str | None, database_url: str | None, as_json: bool) -> None:
    """The latest redrive, purge and replay runs: who, when, filter, counts."""
    with ops_context(project, database_url, need_pubsub=False) as ctx:
        rows = audit.recent_runs(ctx.database, limit)
    emit(rows, as_json, table(rows, ["id", "started_at", "command", "operator", "target", "dry_run", "status",
                                     "matched", "moved", "skipped", "failed", "filter"], empty="no runs recorded"))
    sys.exit(EXIT_OK)
