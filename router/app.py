"""The HTTP app: the ingest dispatcher in front of a Quart app for everything else.

:func:`create_asgi` builds the :class:`~router.fastpath.IngestDispatcher`,
and :func:`serve_topology` gives it what to serve: a topology's ingest
table, and behind it a Quart app built for that topology, which answers the
sources' query routes (``IngestRoute.handler``) and ``/healthz``,
``/readyz``, ``/metrics``, ``/plugins``, ``/openapi.json``.
Both build requests and replies with :mod:`router.asgi`.

Errors never produce a 500 with a traceback: on a source's path they are
rendered by that source in its vendor's shape; elsewhere in one stable JSON
shape ``{"error": <title>, "message": <text>, "status": <code>}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import orjson
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from router import __version__
from router.asgi import core_error, encode_reply, ingest_request, unhandled
from router.errors import IngestError
from router.fastpath import IngestDispatcher
from router.openapi import build_document
from router.source import Reply

if TYPE_CHECKING:
    from router.config import ServerConfig
    from router.ingest import SourceRuntime
    from router.metrics import Metrics
    from router.registry import Registry
    from router.topology import Topology

__all__ = ["AppHost", "create_asgi", "serve_topology"]


class AppHost(Protocol):
    """What the app reads from the process serving it (:class:`router.daemon.Daemon`).

    A Protocol rather than the Daemon itself, so the app sits below the daemon.
    """

    registry: Registry
    metrics: Metrics

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


def to_response(reply: Reply) -> Response:
    """``reply`` as a Quart response, with the headers :func:`router.asgi.send_reply` sends."""
    status, headers, body = encode_reply(reply)
    response = Response(body, status=status)
    response.headers.clear()
    for name, value in headers:
        response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
    return response


def create_asgi(server: ServerConfig) -> IngestDispatcher:
    """The ASGI app the daemon serves, with nothing to serve until :func:`serve_topology`."""
    return IngestDispatcher(
        server.max_body_bytes,
        server.body_timeout,
        server.max_header_bytes,
        server.max_inflight_bytes,
    )


def serve_topology(dispatcher: IngestDispatcher, host: AppHost, topology: Topology) -> None:
    """Serve ``topology`` from the next request on; a request in flight finishes on its own."""
    dispatcher.use(topology.ingest, _quart_app(host, topology))


def _quart_app(host: AppHost, topology: Topology) -> QuartTrio:
    """The Quart app behind the dispatcher: status endpoints, query routes, errors.

    Ingest routes have no rule here: the dispatcher answers them, and a wrong
    method on any source's path.
    """
    app = QuartTrio("router")
    max_body_bytes = topology.config.server.max_body_bytes
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    endpoints: dict[str, SourceRuntime] = {}

    for runtime in topology.sources.values():
        for route in type(runtime.source).routes:
            if route.handler is None:
                continue
            path = runtime.config.prefix + runtime.config.paths.get(route.name, route.path)
            endpoint = f"{runtime.name}:{route.name}"
            endpoints[endpoint] = runtime
            view = _query_view(runtime, getattr(runtime.source, route.handler), route.name)
            app.add_url_rule(path, endpoint, view, methods=[route.method])

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        ready, detail = host.readiness()
        if ready:
            return detail, 200
        # Storage is probed every second: a client may look again that soon.
        return detail, 503, {"Retry-After": "1"} if "storage_errors" in detail else {}

    @app.get("/metrics")
    async def metrics() -> Any:
        return Response(host.metrics.render(), content_type="text/plain; version=0.0.4")

    @app.get("/plugins")
    async def plugins() -> Any:
        return Response(
            orjson.dumps([p.to_dict() for p in host.registry.plugins]),
            content_type="application/json",
        )

    # --- /openapi.json: the ingest routes as configured (router.openapi) ---
    openapi_document: list[bytes] = []

    @app.get("/openapi.json")
    async def openapi() -> Any:
        if not openapi_document:  # built once, on first use: a topology never changes
            document = build_document(
                topology.sources.values(),
                max_body_bytes=max_body_bytes,
                version=__version__,
            )
            openapi_document.append(orjson.dumps(document))
        return Response(openapi_document[0], content_type="application/json")

    _add_error_handlers(app, endpoints)
    return app


def _add_error_handlers(app: QuartTrio, endpoints: dict[str, SourceRuntime]) -> None:
    """The core's 404, 405 and HTTP errors in one JSON shape; a 500 in its source's shape."""

    @app.errorhandler(NotFound)
    async def not_found(exc: NotFound) -> Any:
        message = f"no route for {request.method} {request.path}"
        return to_response(core_error(404, "Not Found", message))

    @app.errorhandler(MethodNotAllowed)
    async def method_not_allowed(exc: MethodNotAllowed) -> Any:
        # Only the core's own routes: the dispatcher answers on a source's path.
        allowed = ", ".join(sorted(exc.valid_methods or ()))
        message = f"{request.method} is not allowed on {request.path}; use {allowed}"
        return to_response(core_error(405, "Method Not Allowed", message, {"Allow": allowed}))

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Any:
        return to_response(core_error(exc.code or 500, exc.name, exc.description or exc.name))

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Any:
        rule = request.url_rule
        runtime = endpoints.get(rule.endpoint) if rule is not None else None
        return to_response(unhandled(exc, ingest_request(request.scope), runtime))


def _query_view(runtime: SourceRuntime, handler: Any, route_name: str):
    """The view of a read-only route a Source answers itself (``IngestRoute.handler``)."""

    async def view(**path_params: str) -> Response:
        query = ingest_request(request.scope, b"", path_params, route=route_name)
        if runtime.config.auth is not None and runtime.config.auth.keys:
            try:
                runtime.check_credential(query)
            except IngestError as exc:
                return to_response(runtime.error_reply(query, exc))
        try:
            reply = await handler(query)
        except IngestError as exc:
            reply = runtime.error_reply(query, exc)
        runtime.metrics.requests.labels(runtime.name, str(reply.status)).inc()
        return to_response(reply)

    view.__name__ = f"query_{runtime.name}_{route_name}"
    return view
