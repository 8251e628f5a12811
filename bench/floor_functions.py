"""Floor functions, served by functions-framework exactly like the real ones.

`floor_publish` does only what no webhook can avoid: read the request's body and publish it
as one message, waiting for Pub/Sub's confirmation, through the same publisher (client,
batch settings, timeout) as the edge. No parsing, validation, envelope or logging. The edge
bench sends it an envelope like the ones the edge publishes and sets FLOOR_ATTRIBUTES to that
envelope's attributes, so both sides hand the emulator the same bytes (the emulator shares
the 2 cores: a 420-byte message with 2 attributes cost it ~0.2 ms less per request than the
edge's ~1 KB with 6). Module import pulls in only functions-framework, so it doubles as the
cold-start floor's source.
"""

from __future__ import annotations

import json
import os
from typing import Any

import functions_framework

FIXED_TOPIC = "message-received"
FIXED_MESSAGE = json.dumps({"floor": True, "text": "x" * 400}).encode()
FIXED_ATTRIBUTES = {"event_type": "message_received", "source": "floor"}


_attributes: dict[str, str] | None = None


def _publish(data: bytes) -> tuple[str, int, dict[str, str]]:
    global _attributes
    from shared.publisher import get_publisher  # the edge's own publisher and settings

    if _attributes is None:
        _attributes = json.loads(os.environ.get("FLOOR_ATTRIBUTES") or "null") or FIXED_ATTRIBUTES
    message_id = get_publisher().publish_raw(FIXED_TOPIC, data or FIXED_MESSAGE, _attributes)
    return json.dumps({"status": "accepted", "message_id": message_id}), 202, {"Content-Type": "application/json"}


@functions_framework.http
def floor_publish(request: Any) -> tuple[str, int, dict[str, str]]:
    return _publish(request.get_data())


_connection: Any = None


def _select_one() -> None:
    """One statement on a pg8000 connection to DATABASE_URL, made on first use."""
    global _connection
    if _connection is None:
        import pg8000.dbapi

        from shared.db import connect_kwargs  # stdlib-only URL parsing: the writers' own

        _connection = pg8000.dbapi.connect(**connect_kwargs(os.environ["DATABASE_URL"]))
    cursor = _connection.cursor()
    cursor.execute("SELECT 1")
    cursor.fetchall()


@functions_framework.cloud_event
def floor_writer(cloud_event: Any) -> None:
    """Floor of a writer: the framework and the driver, nothing else. Its cold start imports only the
    framework (the body never runs then); under load (the memory floor) it keeps one pg8000 connection
    to DATABASE_URL and runs one statement per push."""
    _select_one()


@functions_framework.http
def floor_console(request: Any) -> tuple[str, int, dict[str, str]]:
    """Floor of the console, which holds a database pool and a publisher: a statement and a publish per request."""
    _select_one()
    return _publish(FIXED_MESSAGE)
