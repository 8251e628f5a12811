"""Floor functions, served by functions-framework exactly like the real ones.

`floor_publish` does only what no webhook can avoid: publish one fixed message and wait
for Pub/Sub's confirmation, through the same publisher (client, batch settings, timeout)
as the edge. No parsing, validation, envelope or logging. Module import pulls in only
functions-framework, so it doubles as the cold-start floor's source.
"""

from __future__ import annotations

import json
from typing import Any

import functions_framework

FIXED_TOPIC = "message-received"
FIXED_MESSAGE = json.dumps({"floor": True, "text": "x" * 400}).encode()
FIXED_ATTRIBUTES = {"event_type": "message_received", "source": "floor"}


@functions_framework.http
def floor_publish(request: Any) -> tuple[str, int, dict[str, str]]:
    from shared.publisher import get_publisher  # the edge's own publisher and settings

    message_id = get_publisher().publish_raw(FIXED_TOPIC, FIXED_MESSAGE, FIXED_ATTRIBUTES)
    return json.dumps({"status": "accepted", "message_id": message_id}), 202, {"Content-Type": "application/json"}


_connection: Any = None


@functions_framework.cloud_event
def floor_writer(cloud_event: Any) -> None:
    """Floor of a writer: the framework and the driver, nothing else. Its cold start imports only the
    framework (the body never runs then); under load (the memory floor) it keeps one pg8000 connection
    to DATABASE_URL and runs one statement per push."""
    global _connection
    if _connection is None:
        import os

        import pg8000.dbapi

        from shared.db import connect_kwargs  # stdlib-only URL parsing: the writers' own

        _connection = pg8000.dbapi.connect(**connect_kwargs(os.environ["DATABASE_URL"]))
    cursor = _connection.cursor()
    cursor.execute("SELECT 1")
    cursor.fetchall()
