"""`assistant`: pushed message_received envelopes -> at most one answer per lead message (its own subscription)."""

from typing import Any

import functions_framework

from shared import subscriber
from shared.assistant import service

subscriber.prepare("assistant", writers=False)  # it answers; conversations_writer writes the message


@functions_framework.cloud_event
def assistant(cloud_event: Any) -> None:
    service.run(cloud_event)
