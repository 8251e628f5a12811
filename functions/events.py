"""`events`: back-office events of any type, per tenant, behind the tenant's API key."""

from typing import Any

import functions_framework

from shared.http_adapter import serve
from shared.payloads import build_for
from shared.sources import generic_event

build_for("events")


@functions_framework.http
def events(request: Any) -> tuple[str, int, dict[str, str]]:
    return serve(request, function="events", router=generic_event.router())
