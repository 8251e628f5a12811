"""`health`: liveness; `?detail=true` also proves the publisher reaches every topic."""

from typing import Any

import functions_framework

from shared.health import check
from shared.responses import flask_response


@functions_framework.http
def health(request: Any) -> tuple[str, int, dict[str, str]]:
    detail = request.args.get("detail", "").lower() in ("1", "true", "yes")
    return flask_response(check(detail=detail))
