"""`obras_writer`: pushed obra_created envelopes -> Postgres, once each."""

from typing import Any

import functions_framework

from shared import subscriber

subscriber.prepare("obras_writer")


@functions_framework.cloud_event
def obras_writer(cloud_event: Any) -> None:
    subscriber.run(cloud_event, function="obras_writer")
