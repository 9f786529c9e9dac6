"""Ingest routes answered straight from ASGI, in front of the Quart app.

Why hand-written: Quart's request and response objects cost about a third
of what the bare server does per request (measured in docs/performance.md),
and ingest routes are the hot path. So an exact ``(method, path)`` match of
a source's ingest route is answered here, with nothing between hypercorn and
:meth:`SourceRuntime.handle`. So is a method none of a source's routes on
that path takes: a 405 in the vendor's shape, with ``Allow`` (the Quart app
has no rule for ingest routes). Everything else — status endpoints, query
routes, unknown paths — goes to the Quart app. Requests and replies are
built with :mod:`router.asgi`, as the Quart app builds them.

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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
import trio

from router.asgi import Scope, core_error, headers_of, ingest_request, send_reply, unhandled
from router.errors import (
    HeadersTooLarge,
    IngestError,
    MethodNotAllowed,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
)
from router.inflight import ADMIT_RETRY_AFTER, IngestAdmission
from router.ingestroutes import IngestRoutes
from router.source import Reply

if TYPE_CHECKING:
    from router.ingest import SourceRuntime

__all__ = ["IngestDispatcher"]

log = structlog.get_logger()

ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]
]

#: A run of slashes, which Quart's routing matches as one.
_SLASHES = re.compile(r"//+")


class IngestDispatcher:
    """An ASGI app: ingest routes directly, the rest to the app behind.

    What it serves, the ingest table and the app behind, is set by :meth:`use`
    and can be replaced while running: each request reads the pair once, so a
    request in flight finishes on the table it started on.
    """

    def __init__(
        self,
        max_body_bytes: int,
        body_timeout: float = 10.0,
        max_header_bytes: int = 0,
        max_inflight_bytes: int = 16 << 20,
    ):
        self.max_body_bytes = max_body_bytes
        #: Bounds the bytes of bodies read or processed at once (server.max_inflight_bytes).
        self.inflight = IngestAdmission(max_inflight_bytes, max_body_bytes)
        self.body_timeout = body_timeout
        #: hypercorn caps only a head that arrives in pieces; 0: no check here.
        self.max_header_bytes = max_header_bytes
        self._serving: tuple[IngestRoutes, ASGIApp] = (IngestRoutes(), _no_app)

    def use(self, routes: IngestRoutes, app: ASGIApp) -> None:
        """Serve ``routes``, and hand every other request to ``app``, from the next request on."""
        self._serving = (routes, app)

    @property
    def routes(self) -> IngestRoutes:
        return self._serving[0]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        routes, app = self._serving
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if not scope["path"].startswith("/"):
            # The absolute form (``POST http://host/path``), which proxies send:
            # hypercorn leaves the whole URL in ``path``, and Quart, routing it
            # its own way, answered a 500.
            scope = {**scope, "path": urlsplit(scope["path"]).path or "/"}
        if self.max_header_bytes and _head_size(scope) > self.max_header_bytes:
            await self._refuse(routes, scope, send, headers_of(scope), self._head_too_large())
            return
        target = routes.match(scope["method"], scope["path"])
        if target is None and scope["path"].startswith("//"):
            # Quart's routing serves ``//collect/event`` as ``/collect/event``.
            target = routes.match(scope["method"], "/" + scope["path"].lstrip("/"))
        if target is not None:
            async with self.inflight.admit(scope["headers"]) as admitted:
                await self._ingest(scope, receive, send, *target, admitted=admitted)
        else:
            await self._to_app(routes, app, scope, receive, send)

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
        headers = headers_of(scope)
        # Not admitted: the body is still read (thrown away chunk by chunk), so
        # the connection stays usable for the client's retry.
        body = await self._read_body(receive, headers, keep=admitted)
        if body is None:
            return  # the client went away before its body arrived: nothing to answer
        request = ingest_request(
            scope, body if isinstance(body, bytes) else b"", path_params, headers
        )
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
                reply = unhandled(exc, request, runtime)
            log.debug(
                "ingest.request",
                source=runtime.name,
                route=route_name,
                status=reply.status,
                bytes=len(body),
                request_id=request.request_id,
            )
        await send_reply(send, reply)
        metrics = runtime.metrics
        metrics.requests.labels(runtime.name, str(reply.status)).inc()
        metrics.request_seconds.labels(runtime.name, route_name).observe(
            time.perf_counter() - started
        )

    async def _to_app(
        self, routes: IngestRoutes, app: ASGIApp, scope: Scope, receive: Any, send: Any
    ) -> None:
        """Hand the request to the Quart app with its body already read (see the module doc).

        A wrong method on a source's path is answered here instead (:func:`_wrong_route`).
        """
        headers = headers_of(scope)
        body = await self._read_body(receive, headers)
        if body is None:
            return
        if isinstance(body, IngestError):
            await self._refuse(routes, scope, send, headers, body)
            return
        reply = _wrong_route(routes, scope, headers)
        if reply is not None:
            await send_reply(send, reply)
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

        await app(scope, replay, shielded_send)

    async def _refuse(
        self,
        routes: IngestRoutes,
        scope: Scope,
        send: Any,
        headers: dict[str, str],
        error: IngestError,
    ) -> None:
        """Answer ``error`` with ``Connection: close``, the body unread.

        In the vendor's shape on a vendor's path, else the core's JSON shape.
        """
        runtime = routes.source_of(scope["path"])
        if runtime is not None:
            reply = runtime.error_reply(ingest_request(scope, headers=headers), error)
        else:
            reply = core_error(error.status, error.title, error.message, error.headers)
        reply.headers["Connection"] = "close"
        await send_reply(send, reply)

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


def _wrong_route(routes: IngestRoutes, scope: Scope, headers: dict[str, str]) -> Reply | None:
    """The answer to a request for a source's path that its routes do not serve as sent.

    Quart's routing matches a path with its runs of slashes as one: a
    method none of the path's routes takes gets a 405 in the vendor's
    shape with ``Allow``, and an ingest route's path with a run of slashes
    inside a 308 to the path without. None: the app answers.
    """
    path = scope["path"]
    merged = _SLASHES.sub("/", path) if "//" in path else path
    known = routes.allowed(merged)
    if known is None:
        return None
    runtime, methods = known
    method = scope["method"]
    if method not in methods:
        allowed = ", ".join(sorted(methods))
        error = MethodNotAllowed(
            f"{method} is not allowed on {path}; use {allowed}", headers={"Allow": allowed}
        )
        return runtime.error_reply(ingest_request(scope, headers=headers), error)
    if merged != path and routes.match(method, merged) is not None:
        query = scope.get("query_string") or b""
        scheme = scope.get("scheme", "http")
        host = headers.get("host", "")
        location = f"{scheme}://{host}{merged}" + (f"?{query.decode('latin-1')}" if query else "")
        return Reply(308, b"", {"Location": location})
    return None


def _head_size(scope: Scope) -> int:
    """The request head's size as sent: request line, then ``name: value`` lines."""
    size = len(scope["method"]) + len(scope.get("raw_path") or b"") + 12
    size += len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
    return size


async def _no_app(scope: Scope, receive: Any, send: Any) -> None:
    """What answers before :meth:`IngestDispatcher.use` is called: nothing is served yet."""
    await send_reply(send, core_error(503, "Service Unavailable", "the router is starting"))
