"""`console`: the sellers' web console (server-rendered pages; changes go out as events)."""

from typing import Any

import functions_framework

from shared.console.web import serve


@functions_framework.http
def console(request: Any) -> Any:
    return serve(request)
