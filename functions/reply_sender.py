"""`reply_sender`: pushed reply_requested envelopes -> the tenant's WhatsApp provider, once each."""

from typing import Any

import functions_framework

from shared import subscriber


@functions_framework.cloud_event
def reply_sender(cloud_event: Any) -> None:
    subscriber.run(cloud_event, function="reply_sender")
