"""`whatsapp`: WhatsApp provider webhooks (Evolution API) -> `message_received`."""

from typing import Any

import functions_framework

from shared.http_adapter import serve
from shared.sources import evolution


@functions_framework.http
def whatsapp(request: Any) -> tuple[str, int, dict[str, str]]:
    return serve(request, function="whatsapp", adapter=evolution.adapt)
