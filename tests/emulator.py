"""Working around the Pub/Sub emulator's push redelivery stall, the way an operator would."""

from __future__ import annotations

from google.cloud import pubsub_v1
from google.protobuf import timestamp_pb2


def seek_to(project: str, subscriptions: list[str], since: float) -> None:
    """Mark every message published since `since` (epoch s) and not acknowledged for redelivery now.

    Emulator 0.8.x stalls a push subscription after failed pushes: with several messages
    failing at once it can stop redelivering them after a few attempts and never resume
    (seen with 5 or more reliably, with 2 about one run in four); new messages still flow.
    Cloud Pub/Sub keeps redelivering with backoff. A seek to a time — what
    `gcloud pubsub subscriptions seek` does for an operator — redelivers everything
    unacknowledged, so a test proves the messages were held, not lost.
    """
    moment = timestamp_pb2.Timestamp()
    moment.FromSeconds(int(since))
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for name in subscriptions:
            subscriber.seek(request={"subscription": subscriber.subscription_path(project, name), "time": moment})
    finally:
        subscriber.close()
