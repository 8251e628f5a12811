"""`assistant`: pushed message_received envelopes -> at most one answer per lead message (its own subscription)."""

from typing import Any

import functions_framework

from shared.assistant import service


@functions_framework.cloud_event
def assistant(cloud_event: Any) -> None:
    service.run(cloud_event)
