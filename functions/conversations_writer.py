"""`conversations_writer`: pushed message_received envelopes -> Postgres, once each."""

from typing import Any

import functions_framework

from shared import subscriber

subscriber.prepare("conversations_writer")


@functions_framework.cloud_event
def conversations_writer(cloud_event: Any) -> None:
    subscriber.run(cloud_event, function="conversations_writer")
