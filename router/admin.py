"""The admin listener: reload, the effective config, the reload history, status and metrics.

Served on ``admin.bind`` (default ``127.0.0.1:9091``), never on the ingest
port. With ``admin.token`` set, every request needs ``Authorization: Bearer
<token>``; the token is read per request, so a reload changes it at once.

=====================  ==================================================
``POST /admin/reload`` reload the config file; the result (422: rejected)
``GET /admin/config``  the effective config, defaults in, secrets redacted
``GET /admin/reloads`` the reload history, newest last
``GET /admin/status``  :func:`router.status.snapshot` as JSON
``GET /metrics``       the Prometheus metrics (also on the ingest port)
=====================  ==================================================

Errors have the ingest port's one JSON shape ``{"error", "message", "status"}``.

In a ``server.workers > 1`` group, the app on the shared admin socket has a
:class:`~router.workergroup.WorkerGroup`: it answers for every worker.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from router.config import config_document
from router.status import Rates, StatusHost, snapshot

if TYPE_CHECKING:
    from router.config import RouterConfig
    from router.reload import Reload
    from router.workergroup import WorkerGroup

__all__ = ["AdminHost", "create_admin_app"]


class AdminHost(StatusHost, Protocol):
    """What the admin app reads from and asks of the process (:class:`router.daemon.Daemon`)."""

    config: RouterConfig

    async def reload_shielded(self, trigger: str) -> Reload: ...


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, title: str, message: str, **headers: str) -> Response:
    body = {"error": title, "message": message, "status": status}
    return json_response(body, status, headers or None)


def create_admin_app(host: AdminHost, rates: Rates, group: WorkerGroup | None = None) -> QuartTrio:
    """The admin ASGI app for ``host``; ``rates`` must be sampled (``Rates.run``) meanwhile.

    With ``group``, what concerns every worker is asked of every worker
    (:meth:`WorkerGroup.answer`), once the token is checked.
    """
    app = QuartTrio("router.admin")
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False

    @app.before_request
    async def authenticate() -> Response | None:
        token = host.config.admin.token
        if token is None:
            return None
        given = request.headers.get("authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), token.encode()
        ):
            return None
        return error_response(
            401,
            "Unauthorized",
            "this admin listener needs Authorization: Bearer <admin.token>",
            **{"WWW-Authenticate": 'Bearer realm="router admin"'},
        )

    if group is not None:

        @app.before_request
        async def for_the_group() -> Response | None:
            return await group.answer(request.method, request.path, request.query_string)

    @app.post("/admin/reload")
    async def reload() -> Response:
        result = await host.reload_shielded("api")
        return json_response(result.to_dict(), 422 if result.result == "rejected" else 200)

    @app.get("/admin/config")
    async def config() -> Response:
        return json_response(config_document(host.config))

    @app.get("/admin/reloads")
    async def reloads() -> Response:
        return json_response([entry.to_dict() for entry in host.reloads])

    @app.get("/admin/status")
    async def status() -> Response:
        return json_response(snapshot(host, rates))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(host.metrics.render(), content_type="text/plain; version=0.0.4")

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        response = error_response(code, exc.name, exc.description or exc.name)
        if code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    return app
