"""`leadgen_fetcher`: pushed leadgen_received envelopes -> the lead's answers from the Graph API -> Postgres."""

from typing import Any

import functions_framework

from shared import subscriber

subscriber.prepare("leadgen_fetcher")


@functions_framework.cloud_event
def leadgen_fetcher(cloud_event: Any) -> None:
    subscriber.run(cloud_event, function="leadgen_fetcher")
