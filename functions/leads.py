"""`leads`: site forms and manual entry -> `lead_created`."""

from typing import Any

import functions_framework

from shared.http_adapter import serve
from shared.sources import lead_form


@functions_framework.http
def leads(request: Any) -> tuple[str, int, dict[str, str]]:
    return serve(request, function="leads", adapter=lead_form.adapt)
