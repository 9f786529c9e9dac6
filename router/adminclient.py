"""Reaching a running router's admin listener from the command line (router top, router tap).

Where to connect comes from ``--admin`` (a URL, ``unix:PATH`` or an
``admin.bind`` value), else from the ``-c`` config's ``admin.bind``, else the
default; the token from ``--token``, else the config's ``admin.token``.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from router.config import AdminConfig, parse_bind
from router.errors import UsageError

__all__ = ["admin_client", "admin_targets", "admin_url"]


def admin_url(bind: str, command: str = "router top") -> str:
    """The URL that reaches an ``admin.bind``: a wildcard address is reached on loopback.

    :raises UsageError: if the listener is ``off``.
    """
    if bind == "off":
        raise UsageError(f"the admin listener is off (admin.bind: off); {command} reads it")
    if bind.startswith("unix:"):
        return bind
    host, port = parse_bind(bind)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _option(value: str, command: str) -> str:
    """An ``--admin`` value as a URL: ``HOST:PORT`` is read as an ``admin.bind``.

    :raises UsageError: if it is neither a URL nor ``HOST:PORT``.
    """
    if "://" in value or value.startswith("unix:"):
        return value.rstrip("/")
    try:
        return admin_url(value, command)
    except ValueError as exc:
        raise UsageError(f"--admin {value}: not http://HOST:PORT or unix:PATH ({exc})") from None


def admin_targets(
    admin: Sequence[str] | None, token: str | None, config_path: str | None, command: str
) -> tuple[list[str], str | None]:
    """The admin URLs and token: the options', else the ``-c`` config's, else the defaults."""
    if admin:
        return [_option(value, command) for value in admin], token
    if config_path is None:
        return [admin_url(AdminConfig().bind, command)], token
    from router.loader import load

    config, _ = load(config_path)
    urls = [admin_url(config.admin.bind, command)]
    return urls, token if token is not None else config.admin.token


def admin_client(url: str, headers: dict[str, str], timeout: float | httpx.Timeout) -> httpx.Client:
    """An httpx client whose relative URLs go to ``url`` (``http://…`` or ``unix:PATH``)."""
    if url.startswith("unix:"):
        transport = httpx.HTTPTransport(uds=url.removeprefix("unix:"))
        return httpx.Client(
            transport=transport, base_url="http://admin", headers=headers, timeout=timeout
        )
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
