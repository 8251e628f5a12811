"""`reply_sender`: pushed reply_requested envelopes -> the tenant's WhatsApp provider, once each."""

from typing import Any

import functions_framework

from shared import replies, subscriber

subscriber.prepare("reply_sender", writers=False)  # its outbox, not a writer, records the send


@functions_framework.cloud_event
def reply_sender(cloud_event: Any) -> None:
    replies.run(cloud_event)
