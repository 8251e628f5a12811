"""`whatsapp`: WhatsApp provider webhooks (Evolution, Z-API, Meta Cloud API, 360dialog, Gupshup)
at `/<tenant>/<provider>` -> `message_received`."""

from typing import Any

import functions_framework

from shared.http_adapter import serve
from shared.payloads import build_for
from shared.sources.routing import router

_route = router("whatsapp")
build_for("whatsapp")


@functions_framework.http
def whatsapp(request: Any) -> tuple[str, int, dict[str, str]]:
    return serve(request, function="whatsapp", router=_route)
