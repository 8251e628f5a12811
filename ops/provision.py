"""Create the topology's topics and subscriptions on a Pub/Sub endpoint (the emulator).

The same shapes Terraform creates in the cloud: a topic and a dead-letter topic per
event type, a push subscription per (topic, subscriber) with retry and dead-letter
policies, and a pull subscription on every dead-letter topic for operators.

A subscription with its own `retry_policies` entry in the topology keeps that entry's
max_delivery_attempts here too; its backoff stays the local one (CT_*_BACKOFF_SECONDS),
so a local run compresses hours into minutes but keeps the same number of attempts.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace

from shared.topology import RetryPolicy, Topology


@dataclass(frozen=True)
class DeliveryPolicy:
    """Local retry budget: about 1+2+4+8+10x16 s of backoff, so an outage of a minute or two
    (Postgres restarting, a writer restarting) costs retries, not dead letters."""

    max_delivery_attempts: int = 20
    min_backoff_seconds: int = 1
    max_backoff_seconds: int = 10
    ack_deadline_seconds: int = 60

    def for_subscription(self, own: RetryPolicy | None) -> DeliveryPolicy:
        """The subscription's own attempts from the topology, with this (local) policy's backoff."""
        return self if own is None else replace(self, max_delivery_attempts=own.max_delivery_attempts)

    @classmethod
    def from_env(cls) -> DeliveryPolicy:
        return cls(
            max_delivery_attempts=int(os.environ.get("CT_MAX_DELIVERY_ATTEMPTS", cls.max_delivery_attempts)),
            min_backoff_seconds=int(os.environ.get("CT_MIN_BACKOFF_SECONDS", cls.min_backoff_seconds)),
            max_backoff_seconds=int(os.environ.get("CT_MAX_BACKOFF_SECONDS", cls.max_backoff_seconds)),
            ack_deadline_seconds=int(os.environ.get("CT_ACK_DEADLINE_SECONDS", 60)),
        )


def push_endpoint(function_url: str, project: str, topic: str) -> str:
    """functions-framework names the CloudEvent's topic from this path."""
    return f"{function_url.rstrip('/')}/projects/{project}/topics/{topic}"


def provision(project: str, topology: Topology, function_urls: dict[str, str],
              policy: DeliveryPolicy | None = None) -> list[str]:
    """Create (or re-point) every resource; returns the names touched."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2

    policy = policy or DeliveryPolicy.from_env()
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    touched: list[str] = []
    try:
        for et in topology.event_types.values():
            for topic in (et.topic, et.dead_letter_topic):
                with contextlib.suppress(AlreadyExists):
                    publisher.create_topic(name=publisher.topic_path(project, topic))
                touched.append(topic)
            dlq_path = publisher.topic_path(project, et.dead_letter_topic)
            for sub_name, function in et.subscriptions.items():
                own = policy.for_subscription(et.retry_policies.get(sub_name))
                path = subscriber.subscription_path(project, sub_name)
                push = pubsub_v1.types.PushConfig(
                    push_endpoint=push_endpoint(function_urls[function], project, et.topic))
                request = {
                    "name": path,
                    "topic": publisher.topic_path(project, et.topic),
                    "push_config": push,
                    "ack_deadline_seconds": own.ack_deadline_seconds,
                    "dead_letter_policy": {"dead_letter_topic": dlq_path,
                                           "max_delivery_attempts": own.max_delivery_attempts},
                    "retry_policy": {
                        "minimum_backoff": duration_pb2.Duration(seconds=own.min_backoff_seconds),
                        "maximum_backoff": duration_pb2.Duration(seconds=own.max_backoff_seconds),
                    },
                }
                try:
                    subscriber.create_subscription(request=request)
                except AlreadyExists:
                    subscriber.modify_push_config(subscription=path, push_config=push)
                touched.append(sub_name)
            dlq_sub = subscriber.subscription_path(project, et.dead_letter_subscription)
            with contextlib.suppress(AlreadyExists):
                subscriber.create_subscription(request={"name": dlq_sub, "topic": dlq_path,
                                                        "ack_deadline_seconds": 60})
            touched.append(et.dead_letter_subscription)
    finally:
        subscriber.close()
    return touched
