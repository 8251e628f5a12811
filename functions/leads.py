"""`leads`: lead sources (site form, Meta Lead Ads, Typeform, Google Ads) at `/<tenant>/<source>`
-> `lead_created` (Meta Lead Ads -> `leadgen_received`, completed by `leadgen_fetcher`)."""

from typing import Any

import functions_framework

from shared.http_adapter import serve
from shared.payloads import build_for
from shared.sources.routing import router

_route = router("leads")
build_for("leads")


@functions_framework.http
def leads(request: Any) -> tuple[str, int, dict[str, str]]:
    return serve(request, function="leads", router=_route)
