"""The HTTP app: every source's routes, plus ``/healthz``, ``/readyz``, ``/metrics``, ``/plugins``.

Errors never produce a 500 with a traceback: on a source's path they are
rendered by that source in its vendor's shape; elsewhere in one stable JSON
shape ``{"error": <title>, "message": <text>, "status": <code>}``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from router.errors import IngestError, InternalError
from router.errors import MethodNotAllowed as MethodNotAllowedError
from router.fastpath import IngestDispatcher
from router.source import IngestRequest, Reply

if TYPE_CHECKING:
    from router.daemon import Daemon
    from router.ingest import SourceRuntime

__all__ = ["create_asgi"]

log = structlog.get_logger()


def to_response(reply: Reply) -> Response:
    body = reply.body
    if not isinstance(body, bytes | str):
        body = orjson.dumps(body)
    return Response(
        body,
        status=reply.status,
        headers=reply.headers,
        content_type=reply.content_type if body else None,
    )


def json_error(status: int, title: str, message: str, headers: dict[str, str] | None = None):
    return to_response(
        Reply(status, {"error": title, "message": message, "status": status}, dict(headers or {}))
    )


def create_asgi(daemon: Daemon) -> IngestDispatcher:
    """The ASGI app the daemon serves: ingest routes directly, the rest through Quart."""
    server = daemon.config.server
    dispatcher = IngestDispatcher(
        _quart_app(daemon), server.max_body_bytes, server.max_inflight_bytes
    )
    for runtime in daemon.sources.values():
        for route in type(runtime.source).routes:
            if route.handler is None:
                path = runtime.config.prefix + runtime.config.paths.get(route.name, route.path)
                dispatcher.add(route.method, path, runtime, route.name)
    return dispatcher


def _quart_app(daemon: Daemon) -> QuartTrio:
    """The Quart app behind the dispatcher: status endpoints, query routes, errors."""
    app = QuartTrio("router")
    app.config["MAX_CONTENT_LENGTH"] = daemon.config.server.max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    endpoints: dict[str, SourceRuntime] = {}

    for runtime in daemon.sources.values():
        cls = type(runtime.source)
        for route in cls.routes:
            path = runtime.config.prefix + runtime.config.paths.get(route.name, route.path)
            endpoint = f"{runtime.name}:{route.name}"
            endpoints[endpoint] = runtime
            if route.handler is None:
                view = _routed_by_dispatcher(runtime, route.name)
            else:
                view = _query_view(runtime, getattr(runtime.source, route.handler), route.name)
            app.add_url_rule(path, endpoint, view, methods=[route.method])

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        ready, detail = daemon.readiness()
        if ready:
            return detail, 200
        # Storage is probed every second: a client may look again that soon.
        return detail, 503, {"Retry-After": "1"} if "storage_errors" in detail else {}

    @app.get("/metrics")
    async def metrics() -> Any:
        return Response(daemon.metrics.render(), content_type="text/plain; version=0.0.4")

    @app.get("/plugins")
    async def plugins() -> Any:
        return Response(
            orjson.dumps([p.to_dict() for p in daemon.registry.plugins]),
            content_type="application/json",
        )

    def source_for_path() -> SourceRuntime | None:
        """The source whose route matches this path with some method, if any."""
        adapter = app.url_map.bind("")
        for method in ("POST", "GET", "PUT", "DELETE", "PATCH"):
            try:
                rule, _ = adapter.match(request.path, method=method, return_rule=True)
            except HTTPException:
                continue
            return endpoints.get(rule.endpoint)
        return None

    @app.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        return json_error(404, "Not Found", f"no route for {request.method} {request.path}")

    @app.errorhandler(MethodNotAllowed)
    async def method_not_allowed(exc: MethodNotAllowed) -> Any:
        allowed = ", ".join(sorted(exc.valid_methods or ()))
        headers = {"Allow": allowed}
        message = f"{request.method} is not allowed on {request.path}; use {allowed}"
        runtime = source_for_path()
        if runtime is not None:
            error = MethodNotAllowedError(message, headers=headers)
            return to_response(runtime.error_reply(_ingest_request(b"", runtime), error))
        return json_error(405, "Method Not Allowed", message, headers)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        return json_error(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Any:
        log.error(
            "http.unhandled_error",
            path=request.path,
            error_type=type(exc).__name__,
            error=str(exc),
            exc_info=exc,
        )
        runtime = source_for_path()
        if runtime is not None:
            error = InternalError("internal error; the event was not accepted")
            return to_response(runtime.error_reply(_ingest_request(b"", runtime), error))
        return json_error(500, "Internal Server Error", "internal error")

    return app


def _ingest_request(body: bytes, runtime: SourceRuntime | None = None) -> IngestRequest:
    return IngestRequest(
        method=request.method,
        path=request.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        path_params=dict(request.view_args or {}),
        query=dict(request.args.items()),
        remote_addr=request.remote_addr or "",
        request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
    )


def _routed_by_dispatcher(runtime: SourceRuntime, route_name: str):
    """The Quart view of an ingest route: never reached when served by the daemon.

    :class:`IngestDispatcher` answers every request whose method and path
    match an ingest route before Quart sees it. Quart keeps the rule so its
    routing answers another method on that path with a 405 in the vendor's
    shape (``method_not_allowed`` above).
    """

    async def view(**path_params: str) -> Response:
        raise RuntimeError(f"{route_name} of {runtime.name} is answered by IngestDispatcher")

    view.__name__ = f"ingest_{runtime.name}_{route_name}"
    return view


def _query_view(runtime: SourceRuntime, handler: Any, route_name: str):
    async def view(**path_params: str) -> Response:
        ingest_request = _ingest_request(b"", runtime)
        if runtime.config.auth is not None and runtime.config.auth.keys:
            try:
                runtime.check_credential(ingest_request)
            except IngestError as exc:
                return to_response(runtime.error_reply(ingest_request, exc))
        try:
            reply = await handler(ingest_request)
        except IngestError as exc:
            reply = runtime.error_reply(ingest_request, exc)
        runtime.metrics.requests.labels(runtime.name, str(reply.status)).inc()
        return to_response(reply)

    view.__name__ = f"query_{runtime.name}_{route_name}"
    return view
