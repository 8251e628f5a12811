"""`ctower subscriptions seek`: deliver again now whatever a push subscription still holds.

Cloud Pub/Sub redelivers failed pushes by itself; the emulator can stop (see
ops/deliveries.py), and `ctower status` then shows the subscription as stalled. The local
stack seeks stalled subscriptions by itself (unless CT_AUTO_SEEK=false); this is the same
step by hand, locally or in the cloud. Writers are idempotent, so a message delivered again
that was already written becomes a `duplicate` row; dead letters are not touched.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import click

from ops.clikit import EXIT_CODES, EXIT_OK, EXIT_USAGE, emit, fail, json_option, ops_context, target_options
from ops.deliveries import seek
from ops.stackinfo import StackError, read_description

CLOUD_LOOKBACK_SECONDS = 7 * 24 * 3600  # the subscriptions' message retention (terraform default)


@click.group()
def subscriptions() -> None:
    """Push subscriptions: restart deliveries that stopped."""


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
