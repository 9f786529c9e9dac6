"""The admin listener: reload, the effective config, the reload history, status and metrics.

Served on ``admin.bind`` (default ``127.0.0.1:9091``), never on the ingest
port. With ``admin.token`` set, every request needs ``Authorization: Bearer
<token>``; the token is read per request, so a reload changes it at once.
A browser cannot send that header, so the status page also takes the
token once as ``/?token=<token>``: the answer is a redirect to ``/`` that
sets a cookie (an HMAC of the token, not the token) which opens the status
page and nothing else. A changed token voids the cookie.

=====================  ==================================================
``GET /``              the status page (HTML, :mod:`router.statuspage`)
``GET /status``        the same page
``POST /admin/reload`` reload the config file; the result (422: rejected)
``GET /admin/config``  the effective config, defaults in, secrets redacted
``GET /admin/reloads`` the reload history, newest last
``GET /admin/status``  :func:`router.status.snapshot` as JSON
``GET /admin/tap``     NDJSON of the events passing a point (:mod:`router.tap`)
``GET /metrics``       the Prometheus metrics (also on the ingest port)
=====================  ==================================================

Errors have the ingest port's one JSON shape ``{"error", "message", "status"}``.

In a ``server.workers > 1`` group, the app on the shared admin socket has a
:class:`~router.workergroup.WorkerGroup`: it answers for every worker.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Protocol

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from router.adminreply import error_response, json_response
from router.config import config_document
from router.log import Redactor
from router.status import Rates, StatusHost, snapshot
from router.statuspage import render, render_login
from router.tap import TapHub, TapQueryError, parse_query, stream

if TYPE_CHECKING:
    from router.config import RouterConfig
    from router.reload import Reload
    from router.workergroup import WorkerGroup

__all__ = ["PAGE_COOKIE", "PAGE_PATHS", "AdminHost", "create_admin_app", "page_cookie"]

#: Where the status page is served; only these take ``?token=`` and the cookie.
PAGE_PATHS = frozenset({"/", "/status"})
#: The cookie that opens the status page once ``?token=`` was given.
PAGE_COOKIE = "router_status"
#: How long the cookie lasts (seconds); a changed token voids it sooner.
PAGE_COOKIE_AGE = 12 * 3600


class AdminHost(StatusHost, Protocol):
    """What the admin app reads from and asks of the process (:class:`router.daemon.Daemon`)."""

    config: RouterConfig
    #: Where ``GET /admin/tap`` attaches.
    tap: TapHub

    async def reload_shielded(self, trigger: str) -> Reload: ...

    async def stored_counts(self) -> dict[str, Any]: ...


def page_cookie(token: str) -> str:
    """The status page cookie's value for ``token``: it opens the page, it is not the token."""
    return hmac.new(token.encode(), b"router status page", hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


#: The status page runs no script and loads nothing: a browser is told so, in
#: case a value ever got past the escaping; and no other site may frame it.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def html_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body,
        status=status,
        content_type="text/html; charset=utf-8",
        headers={**PAGE_HEADERS, **(headers or {})},
    )


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
        if scheme.lower() == "bearer" and _same(credential.strip(), token):
            return None
        if request.path in PAGE_PATHS and request.method in ("GET", "HEAD"):
            return page_login(token)
        return error_response(
            401,
            "Unauthorized",
            "this admin listener needs Authorization: Bearer <admin.token>",
            **{"WWW-Authenticate": 'Bearer realm="router admin"'},
        )

    def page_login(token: str) -> Response | None:
        """Let the status page in by its cookie, or swap ``?token=`` for the cookie."""
        if _same(request.cookies.get(PAGE_COOKIE, ""), page_cookie(token)):
            return None
        offered = request.args.get("token")
        if offered is not None and _same(offered, token):
            # A redirect, so the token leaves the address bar and the history.
            response = Response("", status=303, headers={"Location": request.path})
            response.set_cookie(
                PAGE_COOKIE,
                page_cookie(token),
                max_age=PAGE_COOKIE_AGE,
                path="/",
                httponly=True,
                samesite="Strict",
            )
            return response
        message = (
            "That is not the admin token."
            if offered is not None
            else "This admin listener needs its token (admin.token)."
        )
        return html_response(
            render_login(message), 401, {"WWW-Authenticate": 'Bearer realm="router admin"'}
        )

    @app.get("/")
    @app.get("/status")
    async def page() -> Response:
        if group is not None:  # the whole group's, as /admin/status
            merged = await group.snapshot()
            if merged is not None:
                return html_response(render(merged))
        stored = await host.stored_counts()
        return html_response(render(snapshot(host, rates, stored)))

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
        return json_response(snapshot(host, rates, await host.stored_counts()))

    @app.get("/admin/tap")
    async def tap() -> Response:
        config = host.config
        try:
            flt, form, limit = parse_query(request.args.to_dict(), config)
        except TapQueryError as exc:
            return error_response(400, "Bad Request", str(exc))
        lines = stream(
            host.tap,
            flt,
            form=form,
            limit=limit,
            mask=config.admin.tap.mask,
            redactor=Redactor(config.secrets),
        )
        response = Response(lines, content_type="application/x-ndjson")
        response.timeout = None  # a tap streams until its limit or its reader leaves
        return response

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
