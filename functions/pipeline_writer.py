"""`pipeline_writer`: pushed proposal_sent, stage_changed, won envelopes -> Postgres, once each."""

from typing import Any

import functions_framework

from shared import subscriber

subscriber.prepare("pipeline_writer")


@functions_framework.cloud_event
def pipeline_writer(cloud_event: Any) -> None:
    subscriber.run(cloud_event, function="pipeline_writer")
