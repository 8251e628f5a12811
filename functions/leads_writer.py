"""`leads_writer`: pushed lead_created envelopes -> Postgres, once each."""

from typing import Any

import functions_framework

from shared import subscriber

subscriber.prepare("leads_writer")


@functions_framework.cloud_event
def leads_writer(cloud_event: Any) -> None:
    subscriber.run(cloud_event, function="leads_writer")
