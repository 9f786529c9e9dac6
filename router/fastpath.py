"""Ingest routes answered straight from ASGI, in front of the Quart app.

Why hand-written: Quart's request and response objects cost about a third
of what the bare server does per request (measured in docs/performance.md),
and ingest routes are the hot path. So an exact ``(method, path)`` match of
a source's ingest route is answered here, with nothing between hypercorn and
:meth:`SourceRuntime.handle`; everything else — status endpoints, query
routes, a wrong method on an ingest path, unknown paths — goes to the Quart
app, which renders those errors (in the vendor's shape on a vendor's path).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
import structlog

from router.errors import InternalError, Overloaded, PayloadTooLarge
from router.inflight import ADMIT_RETRY_AFTER, IngestAdmission, discard_body
from router.source import IngestRequest, Reply

if TYPE_CHECKING:
    from router.ingest import SourceRuntime

__all__ = ["IngestDispatcher"]

log = structlog.get_logger()

Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]

#: Quart/werkzeug path variables (``<platform>``, ``<int:id>``) as regex groups.
_VARIABLE = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


class IngestDispatcher:
    """An ASGI app: ingest routes directly, the rest to ``app``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_inflight_bytes: int = 16 << 20):
        self.app = app
        self.max_body_bytes = max_body_bytes
        #: Bounds the bytes of bodies read or processed at once (server.max_inflight_bytes).
        self.inflight = IngestAdmission(max_inflight_bytes, max_body_bytes)
        self._static: dict[tuple[str, str], tuple[SourceRuntime, str]] = {}
        self._patterns: list[tuple[str, re.Pattern[str], SourceRuntime, str]] = []

    def add(self, method: str, path: str, runtime: SourceRuntime, route_name: str) -> None:
        """Serve ``method path`` (Quart path syntax) with ``runtime``'s ingest pipeline."""
        if "<" not in path:
            self._static[(method, path)] = (runtime, route_name)
            return
        pattern = "".join(
            f"(?P<{m.group(1)}>[^/]+)" if m else re.escape(part) for part, m in _split(path)
        )
        self._patterns.append((method, re.compile(pattern + r"\Z"), runtime, route_name))

    def _match(self, method: str, path: str) -> tuple[SourceRuntime, str, dict[str, str]] | None:
        found = self._static.get((method, path))
        if found is not None:
            return found[0], found[1], {}
        for route_method, pattern, runtime, name in self._patterns:
            if route_method == method:
                match = pattern.match(path)
                if match:
                    return runtime, name, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            target = self._match(scope["method"], scope["path"])
            if target is not None:
                async with self.inflight.admit(scope["headers"]) as admitted:
                    await self._ingest(scope, receive, send, *target, admitted=admitted)
                return
        await self.app(scope, receive, send)

    async def _ingest(
        self,
        scope: Scope,
        receive: Any,
        send: Any,
        runtime: SourceRuntime,
        route_name: str,
        path_params: dict[str, str],
        *,
        admitted: bool = True,
    ) -> None:
        started = time.perf_counter()
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        client = scope.get("client")
        if admitted:
            body = await self._read_body(receive, headers)
        else:
            body = b""
            await discard_body(receive, self.max_body_bytes)
        request = IngestRequest(
            method=scope["method"],
            path=scope["path"],
            headers=headers,
            body=body or b"",
            path_params=path_params,
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            remote_addr=client[0] if client else "",
            request_id=headers.get("x-request-id") or uuid.uuid4().hex,
        )
        if not admitted:
            reply = runtime.error_reply(
                request,
                Overloaded(
                    "too many request bytes in progress (server.max_inflight_bytes); retry later",
                    headers={"Retry-After": str(ADMIT_RETRY_AFTER)},
                ),
            )
        elif body is None:
            reply = runtime.error_reply(
                request,
                PayloadTooLarge(
                    f"request body is larger than {self.max_body_bytes} bytes "
                    "(server.max_body_bytes)"
                ),
            )
        else:
            try:
                reply = await runtime.handle(request)
            except Exception as exc:  # a core bug: answer in the vendor's shape, log it all
                log.error(
                    "http.unhandled_error",
                    path=request.path,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    exc_info=exc,
                )
                reply = runtime.error_reply(
                    request, InternalError("internal error; the events were not accepted")
                )
            log.debug(
                "ingest.request",
                source=runtime.name,
                route=route_name,
                status=reply.status,
                bytes=len(body),
                request_id=request.request_id,
            )
        await _send(send, reply)
        metrics = runtime.metrics
        metrics.requests.labels(runtime.name, str(reply.status)).inc()
        metrics.request_seconds.labels(runtime.name, route_name).observe(
            time.perf_counter() - started
        )

    async def _read_body(self, receive: Any, headers: dict[str, str]) -> bytes | None:
        """The whole body, or None if it exceeds ``max_body_bytes`` (the rest is not read)."""
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nothing to answer
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def _split(path: str) -> list[tuple[str, re.Match[str] | None]]:
    parts: list[tuple[str, re.Match[str] | None]] = []
    position = 0
    for match in _VARIABLE.finditer(path):
        parts.append((path[position : match.start()], None))
        parts.append(("", match))
        position = match.end()
    parts.append((path[position:], None))
    return parts


async def _send(send: Any, reply: Reply) -> None:
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
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
