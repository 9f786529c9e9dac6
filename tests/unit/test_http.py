"""serve_http on a loopback port: bound URLs, the connection cap, slots given back, shutdown."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import hypercorn.config
import pytest
import trio
from hypercorn.utils import wrap_app
from structlog.testing import capture_logs

from router.http import serve_http

HANG = 10  # only stops a hung test


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal ASGI app: 200 with the path as the body; lifespan accepted."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    body = scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def config(**options: Any) -> hypercorn.config.Config:
    hc = hypercorn.config.Config()
    hc.bind = ["127.0.0.1:0"]
    hc.errorlog = logging.getLogger("hypercorn.error")
    for name, value in options.items():
        setattr(hc, name, value)
    return hc


async def raw_get(url: str, path: str) -> trio.SocketStream:
    """A keep-alive connection that has had one answer to GET ``path``."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while not received.endswith(path.encode()):
        received += await stream.receive_some()
    assert received.startswith(b"HTTP/1.1 200")
    return stream


async def test_it_reports_the_bound_url_serves_and_stops_on_the_trigger():
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        (url,) = await nursery.start(
            lambda task_status: serve_http(
                wrap_app(app, 1 << 20, None), config(), max_connections=10,
                shutdown_trigger=stop.wait, task_status=task_status,
            )
        )  # fmt: skip
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        async with httpx.AsyncClient() as client:
            assert (await client.get(url + "/hello")).text == "/hello"
        stop.set()  # serve_http returns, so the nursery closes
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with pytest.raises(OSError):
        await trio.open_tcp_stream(host, int(port))


async def test_at_the_cap_the_next_connection_waits_until_one_closes():
    stop = trio.Event()
    with capture_logs() as logs, trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            (url,) = await nursery.start(
                lambda task_status: serve_http(
                    wrap_app(app, 1 << 20, None), config(), max_connections=1,
                    shutdown_trigger=stop.wait, task_status=task_status,
                )
            )  # fmt: skip
            first = await raw_get(url, "/first")
            served = trio.Event()

            async def second() -> None:
                await (await raw_get(url, "/second")).aclose()
                served.set()

            nursery.start_soon(second)
            await trio.sleep(0.2)  # a chance for a server without the cap to answer
            assert not served.is_set()
            await first.aclose()
            await served.wait()
            stop.set()
    warnings = [e for e in logs if e["event"] == "http.connection_limit_reached"]
    assert warnings and warnings[0]["max_connections"] == 1


async def test_a_closed_connection_gives_its_slot_back():
    stop = trio.Event()
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            (url,) = await nursery.start(
                lambda task_status: serve_http(
                    wrap_app(app, 1 << 20, None), config(), max_connections=1,
                    shutdown_trigger=stop.wait, task_status=task_status,
                )
            )  # fmt: skip
            for i in range(5):  # one slot: each needs the one before to have given it back
                await (await raw_get(url, f"/{i}")).aclose()
            stop.set()
