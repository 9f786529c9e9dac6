"""IngestDispatcher: which requests it answers itself, driven over ASGI on a running daemon."""

from __future__ import annotations

import orjson
import pytest
import trio

from router.testing.daemon import running_daemon

BODY = b'{"events": [{"kind": "view", "user": "u"}]}'


def scope(method: str, path: str, body: bytes = BODY, query: bytes = b"") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"router"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "extensions": {},
    }


async def call(app, method: str, path: str, body: bytes = BODY, query: bytes = b""):
    """Status, headers and body of ``app``'s answer."""
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if delivered:
            await trio.sleep_forever()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    with trio.fail_after(10):
        await app(scope(method, path, body, query), receive, send)
    start, *chunks = sent
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, b"".join(c.get("body", b"") for c in chunks)


@pytest.fixture
async def daemon(tmp_path, sample, sample_config):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        yield rd


async def test_a_wrong_method_on_an_ingest_path_is_a_405_in_the_vendors_shape(daemon):
    status, headers, body = await call(daemon.daemon.asgi, "PUT", "/sample/events")
    assert status == 405 and headers["allow"] == "POST"
    assert orjson.loads(body) == {"sample_error": "PUT is not allowed on /sample/events; use POST"}
    status, headers, _ = await call(daemon.daemon.asgi, "HEAD", "/sample/events", b"")
    assert status == 405 and headers["allow"] == "POST"


async def test_a_wrong_method_with_a_run_of_slashes_is_a_405_in_the_vendors_shape(daemon):
    # It was the core's shape: Quart's 405 handler looked the source up by the path as sent.
    status, headers, body = await call(daemon.daemon.asgi, "PUT", "/sample//events")
    assert status == 405 and headers["allow"] == "POST"
    assert orjson.loads(body) == {"sample_error": "PUT is not allowed on /sample//events; use POST"}


async def test_an_ingest_path_with_a_run_of_slashes_inside_is_redirected_as_quart_did(daemon):
    status, headers, _ = await call(daemon.daemon.asgi, "POST", "/sample//events", query=b"a=1")
    assert status == 308 and headers["location"] == "http://router/sample/events?a=1"
    assert daemon.metric("router_events_received_total", source="in") == 0


async def test_leading_slashes_are_served_through_the_ingest_admission(daemon):
    """``//sample/events`` is the route (as Quart matches it), and holds its bytes while read.

    It went through Quart, round the byte budget of server.max_inflight_bytes.
    """
    dispatcher = daemon.daemon.asgi
    held: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        if held:
            await trio.sleep_forever()
        held.append(dispatcher.inflight.budget.held)
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    with trio.fail_after(10):
        await dispatcher(scope("POST", "//sample/events"), receive, send)
    assert sent[0]["status"] == 202
    assert held == [len(BODY)]
    assert daemon.metric("router_events_accepted_total", source="in") == 1
    seconds = daemon.metric("router_request_duration_seconds_count", source="in", route="ingest")
    assert seconds == 1


async def test_unknown_paths_and_core_routes_go_to_the_app(daemon):
    status, _, body = await call(daemon.daemon.asgi, "GET", "/healthz", b"")
    assert status == 200 and orjson.loads(body) == {"status": "ok"}
    status, headers, body = await call(daemon.daemon.asgi, "POST", "/healthz", b"")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert orjson.loads(body)["status"] == 405
    status, _, body = await call(daemon.daemon.asgi, "POST", "/sample/events/", b"")
    assert status == 404 and orjson.loads(body)["message"] == "no route for POST /sample/events/"
