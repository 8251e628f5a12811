"""`console`: the sellers' web console (server-rendered pages; changes go out as events)."""

from typing import Any

import functions_framework

from shared.console.web import serve
from shared.payloads import build_for

build_for("console")


@functions_framework.http
def console(request: Any) -> Any:
    return serve(request)
