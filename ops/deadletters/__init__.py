"""Dead-letter subscriptions for `ctower dlq` and `ctower status`: what callers use, from one place.

model: the message and the operator's filter (no I/O); pubsub: the port to the
subscriptions (pull, ack, nack, lease, one pipelined pass); service: depth, peek, redrive, purge.
"""

from ops.deadletters.model import (
    DEFAULT_MAX_REDRIVES,
    DEFAULT_MAX_SCAN,
    DeadLetter,
    Filter,
    dead_letter_subscriptions,
    original_topic,
    parse_duration,
    republish_attributes,
)
from ops.deadletters.pubsub import (
    ACK_WITHIN_SECONDS,
    MAX_ACK_DEADLINE,
    PULLS_IN_FLIGHT,
    AckError,
    Pass,
    Subscription,
    from_received,
)
from ops.deadletters.service import (
    PUBLISH_BATCH,
    PUBLISHES_IN_FLIGHT,
    Depth,
    RawPublisher,
    RedriveOptions,
    depth,
    lease_seconds,
    peek,
    publish_chunk_size,
    purge,
    redrive,
)

__all__ = [
    "ACK_WITHIN_SECONDS",
    "DEFAULT_MAX_REDRIVES",
    "DEFAULT_MAX_SCAN",
    "MAX_ACK_DEADLINE",
    "PUBLISHES_IN_FLIGHT",
    "PUBLISH_BATCH",
    "PULLS_IN_FLIGHT",
    "AckError",
    "DeadLetter",
    "Depth",
    "Filter",
    "Pass",
    "RawPublisher",
    "RedriveOptions",
    "Subscription",
    "dead_letter_subscriptions",
    "depth",
    "from_received",
    "lease_seconds",
    "original_topic",
    "parse_duration",
    "peek",
    "publish_chunk_size",
    "purge",
    "redrive",
    "republish_attributes",
]
