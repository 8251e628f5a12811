"""`ctower subscriptions seek`: deliver again now whatever a push subscription still holds.

Pub/Sub redelivers a failed push after its backoff (up to 10 minutes per attempt in the
cloud); after an outage is fixed, a seek delivers everything the subscription still holds
now instead, locally or in the cloud. A seek to a time before every message still held
marks them all for redelivery; acknowledged messages are not kept, so only what was not
acknowledged comes again (one already written but not yet acknowledged becomes a
`duplicate` row: the writers are idempotent), and dead letters are untouched.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from ops.clikit import EXIT_CODES, EXIT_OK, EXIT_USAGE, emit, fail, json_option, ops_context, target_options
from ops.stackinfo import StackError, read_description

CLOUD_LOOKBACK_SECONDS = 7 * 24 * 3600  # the subscriptions' message retention (terraform default)


@click.group()
def subscriptions() -> None:
    """Push subscriptions: deliver again, now, what they hold."""


@subscriptions.command("seek", epilog=f"Exit 2 when nothing is selected. {EXIT_CODES}")
@click.argument("names", nargs=-1, metavar="[SUBSCRIPTION]...")
@click.option("--type", "event_types", multiple=True, help="Every push subscription of this event type (repeatable).")
@click.option("--all", "every", is_flag=True, help="Every push subscription.")
@click.option("--since", "since", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
              help="Seek to this UTC time. Messages published before it are marked acknowledged, so give a time "
                   "before the oldest one you need. Default: the local stack's start, or 7 days ago in the cloud.")
@target_options
@json_option
def seek_command(names: tuple[str, ...], event_types: tuple[str, ...], every: bool, since: datetime | None,
                 project: str | None, database_url: str | None, as_json: bool) -> None:
    """Deliver again, now, every message the chosen push subscriptions still hold."""
    with ops_context(project, database_url, need_pubsub=True) as ctx:
        pushes = {name: et.name for et in ctx.topology.event_types.values() for name in et.subscriptions}
        unknown = [n for n in names if n not in pushes] + \
            [t for t in event_types if t not in ctx.topology.event_types]
        if unknown:
            fail(f"unknown push subscription or event type: {', '.join(unknown)}", EXIT_USAGE)
        chosen = sorted(pushes if every else set(names) | {n for n, et in pushes.items() if et in event_types})
        if not chosen:
            fail("name subscriptions, or give --type or --all", EXIT_USAGE)
        to = _default_since(ctx.target.cloud) if since is None else since.replace(tzinfo=UTC).timestamp()
        seek(ctx.subscriber, ctx.project, chosen, to)
    moment = f"{datetime.fromtimestamp(to, UTC):%Y-%m-%d %H:%M:%S} UTC"
    emit({"sought": chosen, "since": to}, as_json,
         [f"delivering again what {name} holds (published since {moment})" for name in chosen])
    sys.exit(EXIT_OK)


def _default_since(cloud: bool) -> float:
    if not cloud:
        try:
            return float(read_description()["started_at"]) - 60
        except (StackError, KeyError, TypeError, ValueError):
            pass
    return time.time() - CLOUD_LOOKBACK_SECONDS


def seek(subscriber: Any, project: str, subscriptions: list[str], to_epoch: float) -> list[str]:
    """Mark every message each subscription still holds, published since `to_epoch`, for redelivery now.

    Messages published before `to_epoch` would be marked acknowledged: give a time before the
    oldest message you need (the local stack's start; in the cloud, the retention window).
    """
    from google.protobuf import timestamp_pb2

    moment = timestamp_pb2.Timestamp()
    moment.FromSeconds(int(to_epoch))
    for name in subscriptions:
        subscriber.seek(request={"subscription": subscriber.subscription_path(project, name), "time": moment},
                        timeout=30)
    return subscriptions
