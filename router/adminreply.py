"""The admin listener's JSON answers, one shape for errors: the core's (``router.asgi.core_error``).

Shared by the admin app and a worker group's answers (:mod:`router.workergroup`).
"""

from __future__ import annotations

from typing import Any

import orjson
from quart import Response

from router.asgi import core_error

__all__ = ["error_response", "json_response"]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, title: str, message: str, **headers: str) -> Response:
    """``{"error": <title>, "message": <text>, "status": <code>}``, as on the ingest port."""
    reply = core_error(status, title, message, headers)
    return json_response(reply.body, status, reply.headers or None)
