"""`ctower dlq`: list, show, redrive and purge dead-lettered messages (logic in ops.deadletters)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from ops import audit, deadletters
from ops.clikit import (
    EXIT_CODES,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_REFUSED,
    EXIT_USAGE,
    F,
    emit,
    fail,
    human_age,
    json_option,
    ops_context,
    table,
    target_options,
)
from ops.context import OpsContext, operator_name
from ops.deadletters import Filter, RedriveOptions, Subscription
from ops.publish_requests import RequestPublisher
from shared.topology import EventType

PEEK_NOTE = ("Depth and age come from a peek (pull without ack, then nack) on every target: the emulator has no "
             "Monitoring API and one code path is what the tests prove. A peek of a dead-letter subscription "
             "changes nothing but its delivery counter.")


def filter_options(func: F) -> F:
    """The selection every dlq command takes; values of one option are alternatives, options combine."""
    for decl, help_text in reversed((
        ("--type", "Event type (its dead-letter subscription only). Repeatable."),
        ("--tenant", "Tenant id. Repeatable."),
        ("--correlation-id", "Correlation id. Repeatable."),
        ("--event-id", "Event id. Repeatable."),
    )):
        dest = decl.lstrip("-").replace("-", "_") + "s"
        func = click.option(decl, dest, multiple=True, metavar="VALUE", help=help_text)(func)
    func = click.option("--older-than", metavar="AGE", help="Dead-lettered at least AGE ago (30s, 10m, 2h, 7d).")(func)
    func = click.option("--newer-than", metavar="AGE", help="Dead-lettered at most AGE ago.")(func)
    func = click.option("--max-scan", type=click.IntRange(min=1), default=deadletters.DEFAULT_MAX_SCAN,
                        show_default=True, help="Read at most this many messages per subscription.")(func)
    return func


def build_filter(types: tuple[str, ...], tenants: tuple[str, ...], correlation_ids: tuple[str, ...],
                 event_ids: tuple[str, ...], older_than: str | None, newer_than: str | None) -> Filter:
    try:
        return Filter(event_types=types, tenants=tenants, correlation_ids=correlation_ids, event_ids=event_ids,
                      older_than=deadletters.parse_duration(older_than) if older_than else None,
                      newer_than=deadletters.parse_duration(newer_than) if newer_than else None)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _subscriptions(ctx: OpsContext, selection: Filter) -> list[tuple[EventType, Subscription]]:
    try:
        chosen = deadletters.dead_letter_subscriptions(ctx.topology, selection.event_types)
    except KeyError as exc:
        fail(str(exc.args[0]), EXIT_USAGE)
    emulator = bool(ctx.target.emulator_host)
    return [(et, Subscription(ctx.subscriber, ctx.project, et.dead_letter_subscription, emulator=emulator))
            for et in chosen]


@click.group("dlq")
def dlq() -> None:
    """Dead-lettered messages: list, show, redrive to their topic, purge.

    Every event type's dead-letter topic has one pull subscription, `<event>-dlq-ops`.
    """


@dlq.command("list", epilog=f"{PEEK_NOTE} Exit 1 when any dead-letter subscription holds messages. {EXIT_CODES}")
@click.option("--type", "types", multiple=True, metavar="EVENT_TYPE", help="Only these event types. Repeatable.")
@click.option("--max-scan", type=click.IntRange(min=1), default=deadletters.DEFAULT_MAX_SCAN, show_default=True,
              help="Count at most this many per subscription (more shows as N+).")
@target_options
@json_option
def list_command(types: tuple[str, ...], max_scan: int, project: str | None, database_url: str | None,
                 as_json: bool) -> None:
    """Every dead-letter subscription with its depth and the age of its oldest message."""
    with ops_context(project, database_url) as ctx:
        depths = [deadletters.depth(sub, et.name, max_scan) for et, sub in _subscriptions(ctx, Filter(types))]
    rows = [d.as_dict() for d in depths]
    emit(rows, as_json, table([{**r, "depth": f"{r['depth']}{'+' if r['depth_at_least'] else ''}",
                                "oldest": human_age(r["oldest_age_seconds"])} for r in rows],
                              ["event_type", "subscription", "depth", "oldest"]))
    sys.exit(EXIT_PROBLEMS if any(d.depth for d in depths) else EXIT_OK)


@dlq.command("show", epilog=f"{PEEK_NOTE} Exit 1 when nothing matches. {EXIT_CODES}")
@filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show at most this many.")
@click.option("--body", is_flag=True, help="Also print each decoded envelope and its attributes.")
@target_options
@json_option
def show(types: tuple[str, ...], tenants: tuple[str, ...], correlation_ids: tuple[str, ...],
         event_ids: tuple[str, ...], older_than: str | None, newer_than: str | None, max_scan: int, limit: int,
         body: bool, project: str | None, database_url: str | None, as_json: bool) -> None:
    """Dead-lettered messages, oldest first: envelope, attributes, source subscription, delivery count.

    Nothing is acknowledged: every message read is put back as it was.
    """
    selection = build_filter(types, tenants, correlation_ids, event_ids, older_than, newer_than)
    now = datetime.now(UTC)
    letters: list[deadletters.DeadLetter] = []
    with ops_context(project, database_url) as ctx:
        for _, sub in _subscriptions(ctx, selection):
            letters += deadletters.peek(sub, selection, limit, max_scan)
    letters = sorted(letters, key=lambda m: m.published_at or now)[:limit]
    summaries = [m.summary(now, with_body=as_json or body) for m in letters]
    lines = [table([{**s, "age": human_age(s["age_seconds"])} for s in summaries],
                   ["event_type", "event_id", "correlation_id", "tenant", "source_subscription", "delivery_count",
                    "redrive_count", "age"], empty="no dead letters match")]
    if body:
        import json

        for s in summaries:
            lines += ["", f"--- {s['event_id']} ({s['subscription']}, message {s['message_id']})",
                      json.dumps({"attributes": s["attributes"], "envelope": s["envelope"]}, indent=2,
                                 ensure_ascii=False, default=str)]
    emit(summaries, as_json, lines)
    sys.exit(EXIT_OK if letters else EXIT_PROBLEMS)


def _max_redrives_default() -> int:
    raw = os.environ.get("CT_MAX_REDRIVES")
    return int(raw) if raw and raw.isdigit() else deadletters.DEFAULT_MAX_REDRIVES


@dlq.command("redrive", epilog="Exit 0 when everything matched was moved; 1 when a publish failed or a message was "
                               f"left in place for its redrive count. {EXIT_CODES}")
@filter_options
@click.option("--limit", type=click.IntRange(min=1), help="Move at most this many messages.")
@click.option("--dry-run", is_flag=True, help="Only count what would move; every message is put back at once.")
@click.option("--rate", type=click.FloatRange(min=0.1), metavar="PER_SECOND", help="At most this many per second.")
@click.option("--max-redrives", type=click.IntRange(min=1), default=_max_redrives_default,
              show_default=f"CT_MAX_REDRIVES or {deadletters.DEFAULT_MAX_REDRIVES}",
              help="A message already redriven this many times is left in place and reported.")
@click.option("--continue-on-error", is_flag=True,
              help="Keep going after a publish fails (default: stop after the batch it failed in).")
@click.option("--operator", help="Who runs this, for the audit record (default: CT_OPERATOR, the gcloud "
                                 "account in the cloud, else the OS user).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a terminal).")
@target_options
@json_option
def redrive(types: tuple[str, ...], tenants: tuple[str, ...], correlation_ids: tuple[str, ...],
            event_ids: tuple[str, ...], older_than: str | None, newer_than: str | None, max_scan: int,
            limit: int | None, dry_run: bool, rate: float | None, max_redrives: int, continue_on_error: bool,
            operator: str | None, progress: bool | None, project: str | None, database_url: str | None,
            as_json: bool) -> None:
    """Republish dead letters to their original topic, same body and attributes, redrive_count + 1.

    Messages move in batches: a pull of up to 1000, the matching ones published 100 at a
    time (one Publish request) while the next two pulls and the previous hundred's
    confirmation are under way. Each message is acknowledged on the dead-letter
    subscription only after Pub/Sub confirms its republish; a failed publish puts it back
    (nack) and is reported, and the run publishes nothing more (the batch already in flight
    is settled). The run is recorded in the ops_audit table (who, when, filter, counts).
    """
    selection = build_filter(types, tenants, correlation_ids, event_ids, older_than, newer_than)
    options = RedriveOptions(selection=selection, limit=limit, dry_run=dry_run, rate=rate, max_redrives=max_redrives,
                             stop_on_error=not continue_on_error, max_scan=max_scan)
    show_bar = (sys.stderr.isatty() if progress is None else progress) and not dry_run
    with ops_context(project, database_url) as ctx:
        subscriptions = _subscriptions(ctx, selection)
        report = audit.RunReport()
        options.run_id = audit.start_run(ctx.database, "dlq redrive", operator_name(operator, ctx.target),
                                         ctx.target.label, {**selection.as_dict(), "limit": limit, "rate": rate,
                                                            "max_redrives": max_redrives}, dry_run)
        publisher = RequestPublisher(ctx.publisher)
        try:
            if show_bar:
                total = sum(len(deadletters.peek(sub, selection, limit, max_scan)) for _, sub in subscriptions)
                with click.progressbar(length=min(total, limit or total), label="redriving", file=sys.stderr,
                                       show_pos=True, item_show_func=_counts_label) as bar:
                    deadletters.redrive(subscriptions, publisher, ctx.topology, options, report, _advance(bar))
            else:
                deadletters.redrive(subscriptions, publisher, ctx.topology, options, report)
        except BaseException as exc:
            report.stopped_early = True
            report.errors.append(f"interrupted: {type(exc).__name__}: {exc}")
            raise
        finally:
            audit.finish_run(ctx.database, options.run_id, report)
    _print_report(report, options.run_id, as_json, "would move" if dry_run else "moved")
    sys.exit(EXIT_OK if report.status == "ok" and not report.skipped else EXIT_PROBLEMS)


def _advance(bar: Any) -> Callable[[audit.RunReport], None]:
    def step(report: audit.RunReport) -> None:
        bar.update(1, report)
    return step


def _counts_label(report: audit.RunReport | None) -> str:
    if report is None:
        return ""
    return f"moved {report.moved}, skipped {report.skipped}, failed {report.failed}"


def _print_report(report: audit.RunReport, run_id: int, as_json: bool, moved_label: str) -> None:
    counts = report.counts()
    lines = [f"audit run {run_id}: matched {counts['matched']}, {moved_label} "
             f"{counts['would_move'] if moved_label == 'would move' else counts['moved']}, "
             f"skipped {counts['skipped']}, failed {counts['failed']} ({report.status})"]
    left = [i for i in report.items if i["outcome"] in ("skipped", "failed")]
    if left:
        lines += ["", "left in the dead-letter subscription:",
                  table(left, ["outcome", "event_id", "correlation_id", "subscription", "reason"])]
    if report.stopped_early and report.failed:
        lines.append("stopped after the first failed publish (use --continue-on-error to go on)")
    emit({"run_id": run_id, **report.as_dict()}, as_json, lines)


@dlq.command("purge", epilog=f"Exit 3 without --yes-i-am-sure or without a filter. {EXIT_CODES}")
@filter_options
@click.option("--limit", type=click.IntRange(min=1), help="Drop at most this many messages.")
@click.option("--yes-i-am-sure", "confirmed", is_flag=True, help="Required: the messages are gone for good.")
@click.option("--operator", help="Who runs this, for the audit record.")
@target_options
@json_option
def purge(types: tuple[str, ...], tenants: tuple[str, ...], correlation_ids: tuple[str, ...],
          event_ids: tuple[str, ...], older_than: str | None, newer_than: str | None, max_scan: int,
          limit: int | None, confirmed: bool, operator: str | None, project: str | None, database_url: str | None,
          as_json: bool) -> None:
    """Acknowledge (drop) the matching dead letters, for messages no fix will ever make valid.

    Needs --yes-i-am-sure and at least one filter. Each dropped message's body is kept
    in its ops_audit record, so `events replay` or a hand-made publish can still bring
    it back.
    """
    selection = build_filter(types, tenants, correlation_ids, event_ids, older_than, newer_than)
    if selection.is_empty():
        fail("refused: purge needs at least one filter (--type, --tenant, --correlation-id, --event-id, "
             "--older-than, --newer-than)", EXIT_REFUSED)
    if not confirmed:
        fail("refused: purge drops messages for good; add --yes-i-am-sure (try `ctower dlq show` with the same "
             "filter first)", EXIT_REFUSED)
    with ops_context(project, database_url) as ctx:
        subscriptions = _subscriptions(ctx, selection)
        run_id = audit.start_run(ctx.database, "dlq purge", operator_name(operator, ctx.target), ctx.target.label,
                                 {**selection.as_dict(), "limit": limit})
        report = audit.RunReport()
        try:
            deadletters.purge(subscriptions, selection, limit, max_scan, report)
        finally:
            audit.finish_run(ctx.database, run_id, report)
    report_dict = report.as_dict()
    for item in report_dict["items"]:
        item.pop("body", None)  # kept in the audit record, not echoed to the terminal
    emit({"run_id": run_id, **report_dict}, as_json,
         [f"audit run {run_id}: purged {report.moved} message(s)",
          table(report.items, ["event_id", "correlation_id", "subscription"], empty="")])
    sys.exit(EXIT_OK)
