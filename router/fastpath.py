"""Ingest routes answered straight from ASGI, in front of the Quart app.

Why hand-written: Quart's request and response objects cost about a third
of what the bare server does per request (measured in docs/performance.md),
and ingest routes are the hot path. So an exact ``(method, path)`` match of
a source's ingest route is answered here, with nothing between hypercorn and
:meth:`SourceRuntime.handle`; everything else — status endpoints, query
routes, a wrong method on an ingest path, unknown paths — goes to the Quart
app, which renders those errors (in the vendor's shape on a vendor's path).

Every request's body is read here, whatever answers it, within
``server.max_body_bytes`` and ``server.body_timeout``: hypercorn can only
reuse a connection once the request body is read, and an answer given before
the body arrived left the connection hung. So the Quart app gets the body
already read, and a body too large (413) or too slow (408) is answered with
``Connection: close``, unread, and the connection is closed. Nothing is
stored from a body that did not arrive whole.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import structlog
import trio

from router.errors import (
    HeadersTooLarge,
    IngestError,
    InternalError,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
)
from router.inflight import ADMIT_RETRY_AFTER, IngestAdmission
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

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        body_timeout: float = 10.0,
        max_header_bytes: int = 0,
        max_inflight_bytes: int = 16 << 20,
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        #: Bounds the bytes of bodies read or processed at once (server.max_inflight_bytes).
        self.inflight = IngestAdmission(max_inflight_bytes, max_body_bytes)
        self.body_timeout = body_timeout
        #: hypercorn caps only a head that arrives in pieces; 0: no check here.
        self.max_header_bytes = max_header_bytes
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

    def _source_of(self, path: str) -> SourceRuntime | None:
        """The source with an ingest route on ``path``, whatever the method."""
        for (_, route_path), (runtime, _) in self._static.items():
            if route_path == path:
                return runtime
        for _, pattern, runtime, _ in self._patterns:
            if pattern.match(path):
                return runtime
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not scope["path"].startswith("/"):
            # The absolute form (``POST http://host/path``), which proxies send:
            # hypercorn leaves the whole URL in ``path``, and Quart routing its
            # own way reached the ingest rule's placeholder view, a 500.
            scope = {**scope, "path": urlsplit(scope["path"]).path or "/"}
        if self.max_header_bytes and _head_size(scope) > self.max_header_bytes:
            await self._refuse(scope, send, _headers(scope), self._head_too_large())
            return
        target = self._match(scope["method"], scope["path"])
        if target is not None:
            async with self.inflight.admit(scope["headers"]) as admitted:
                await self._ingest(scope, receive, send, *target, admitted=admitted)
        else:
            await self._to_app(scope, receive, send)

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
        headers = _headers(scope)
        # Not admitted: the body is still read (thrown away chunk by chunk), so
        # the connection stays usable for the client's retry.
        body = await self._read_body(receive, headers, keep=admitted)
        if body is None:
            return  # the client went away before its body arrived: nothing to answer
        request = _request(scope, headers, body if isinstance(body, bytes) else b"", path_params)
        if isinstance(body, IngestError):
            reply = runtime.error_reply(request, body)
            reply.headers["Connection"] = "close"
        elif not admitted:
            reply = runtime.error_reply(
                request,
                Overloaded(
                    "too many request bytes in progress (server.max_inflight_bytes); retry later",
                    headers={"Retry-After": str(ADMIT_RETRY_AFTER)},
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

    async def _to_app(self, scope: Scope, receive: Any, send: Any) -> None:
        """Hand the request to the Quart app with its body already read (see the module doc)."""
        headers = _headers(scope)
        body = await self._read_body(receive, headers)
        if body is None:
            return
        if isinstance(body, IngestError):
            await self._refuse(scope, send, headers, body)
            return
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if delivered:
                # Never http.disconnect: quart-trio cancels the request's tasks on
                # it, and hypercorn passes it on from inside the send of the last
                # body chunk, which then left the connection without its idle
                # timer or hung. The view's task ends when its response is sent.
                await trio.sleep_forever()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def shielded_send(message: dict) -> None:
            # hypercorn moves the connection to its next request inside this
            # call; a cancellation halfway left it hung.
            with trio.CancelScope(shield=True):
                await send(message)

        await self.app(scope, replay, shielded_send)

    async def _refuse(
        self, scope: Scope, send: Any, headers: dict[str, str], error: IngestError
    ) -> None:
        """Answer ``error`` with ``Connection: close``, the body unread.

        In the vendor's shape on a vendor's path, else the core's JSON shape.
        """
        runtime = self._source_of(scope["path"])
        if runtime is not None:
            reply = runtime.error_reply(_request(scope, headers, b"", {}), error)
        else:
            payload = {"error": error.title, "message": error.message, "status": error.status}
            reply = Reply(error.status, payload, dict(error.headers))
        reply.headers["Connection"] = "close"
        await _send(send, reply)

    def _head_too_large(self) -> HeadersTooLarge:
        return HeadersTooLarge(
            f"request line and headers are larger than {self.max_header_bytes} bytes "
            "(server.max_header_bytes)"
        )

    async def _read_body(
        self, receive: Any, headers: dict[str, str], *, keep: bool = True
    ) -> bytes | IngestError | None:
        """The whole body, PayloadTooLarge or RequestTimeout, or None if the client left.

        With ``keep=False`` the body is read within the same limits but not
        kept: the result is ``b""``.

        Past either limit the rest of the body is not read. ``max_body_bytes``
        is checked against Content-Length before anything is read, and
        against what arrived for a chunked body.
        """
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self._too_large()
        chunks = []
        size = 0
        with trio.move_on_after(self.body_timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":  # http.disconnect
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    return self._too_large()
                if keep:
                    chunks.append(chunk)
                if not message.get("more_body"):
                    return b"".join(chunks)
        log.info("http.body_timeout", received=size, body_timeout=self.body_timeout)
        return RequestTimeout(
            f"the request body did not arrive within {self.body_timeout:g} s "
            "(server.body_timeout); nothing was accepted"
        )

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body is larger than {self.max_body_bytes} bytes (server.max_body_bytes)"
        )


def _head_size(scope: Scope) -> int:
    """The request head's size as sent: request line, then ``name: value`` lines."""
    size = len(scope["method"]) + len(scope.get("raw_path") or b"") + 12
    size += len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
    return size


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }


def _request(
    scope: Scope, headers: dict[str, str], body: bytes, path_params: dict[str, str]
) -> IngestRequest:
    client = scope.get("client")
    return IngestRequest(
        method=scope["method"],
        path=scope["path"],
        headers=headers,
        body=body,
        path_params=path_params,
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        remote_addr=client[0] if client else "",
        request_id=headers.get("x-request-id") or uuid.uuid4().hex,
    )


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
