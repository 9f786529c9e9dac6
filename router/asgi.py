"""Where ASGI meets the router: requests in, replies out, and the 500 nobody planned.

Both HTTP front ends use these functions and nothing else for it: the ingest
dispatcher (:mod:`router.fastpath`), which answers ingest routes straight
from ASGI, and the Quart app (:mod:`router.app`), which answers query routes
and the core's own endpoints.

- :func:`ingest_request` turns an ASGI scope into the :class:`IngestRequest`
  a Source sees;
- :func:`encode_reply` turns a :class:`Reply` into a status, header list and
  body, and :func:`send_reply` sends those as ASGI messages;
- :func:`core_error` is the core's one JSON error shape, for paths no source
  owns;
- :func:`unhandled` logs an exception nothing else caught and answers a 500,
  in the vendor's shape on a source's path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
import structlog

from router.errors import InternalError
from router.source import IngestRequest, Reply

if TYPE_CHECKING:
    from router.ingest import SourceRuntime

__all__ = [
    "INTERNAL_ERROR",
    "Scope",
    "core_error",
    "encode_reply",
    "headers_of",
    "ingest_request",
    "query_of",
    "send_reply",
    "unhandled",
]

log = structlog.get_logger()

Scope = MutableMapping[str, Any]

#: The message of a 500 on a source's path.
INTERNAL_ERROR = "internal error; the events were not accepted"


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers, names lower-cased; of a repeated header, the last one."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }


def query_of(query_string: bytes) -> dict[str, str]:
    """The query parameters; of a repeated one, the first; an empty value is kept (``?page=``).

    The same as Quart's ``request.args`` gave the query routes.
    """
    if not query_string:
        return {}
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        query.setdefault(name, value)
    return query


def ingest_request(
    scope: Scope,
    body: bytes = b"",
    path_params: Mapping[str, str] | None = None,
    headers: dict[str, str] | None = None,
    route: str = "",
) -> IngestRequest:
    """The request as a Source sees it. ``headers``: :func:`headers_of` ``scope``, if already made.

    The request id is the client's ``X-Request-Id``, or a new one; ``route``
    is the name of the matched route.
    """
    if headers is None:
        headers = headers_of(scope)
    client = scope.get("client")
    return IngestRequest(
        method=scope["method"],
        path=scope["path"],
        headers=headers,
        body=body,
        path_params={} if path_params is None else path_params,
        query=query_of(scope.get("query_string", b"")),
        remote_addr=client[0] if client else "",
        request_id=headers.get("x-request-id") or uuid.uuid4().hex,
        route=route,
    )


def encode_reply(reply: Reply) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """``reply`` as its status, its header list and its body bytes.

    A body that is not bytes is sent as UTF-8 (a ``str``) or as JSON. The
    list holds ``content-length``, ``content-type`` unless the body is empty,
    then the reply's own headers.
    """
    body = reply.body
    if not isinstance(body, bytes):
        body = body.encode() if isinstance(body, str) else orjson.dumps(body)
    headers = [(b"content-length", str(len(body)).encode())]
    if body and reply.content_type:
        headers.append((b"content-type", reply.content_type.encode()))
    headers += [
        (name.lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in reply.headers.items()
    ]
    return reply.status, headers, body


async def send_reply(send: Any, reply: Reply) -> None:
    """Send ``reply`` as the two ASGI messages of a response."""
    status, headers, body = encode_reply(reply)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def core_error(
    status: int, title: str, message: str, headers: Mapping[str, str] | None = None
) -> Reply:
    """The core's JSON error: ``{"error": <title>, "message": <text>, "status": <code>}``."""
    return Reply(
        status, {"error": title, "message": message, "status": status}, dict(headers or {})
    )


def unhandled(
    exc: Exception, request: IngestRequest, runtime: SourceRuntime | None = None
) -> Reply:
    """Log ``exc``, a bug, with its traceback; a 500 in ``runtime``'s shape, else the core's."""
    log.error(
        "http.unhandled_error",
        path=request.path,
        source=runtime.name if runtime is not None else None,
        request_id=request.request_id,
        error_type=type(exc).__name__,
        error=str(exc),
        exc_info=exc,
    )
    if runtime is None:
        return core_error(500, "Internal Server Error", "internal error")
    return runtime.error_reply(request, InternalError(INTERNAL_ERROR))
