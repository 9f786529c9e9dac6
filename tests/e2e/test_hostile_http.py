"""Hostile HTTP against the daemon over a raw loopback socket, on the default config.

Each case asserts the exact outcome: the status, the vendor's error shape,
and whether the connection is still usable or was closed cleanly. Timeouts
are configured small so that slow clients are cut off quickly; nothing here
asserts how long anything took.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest
import trio

from plugins.moloco.ingest import GRPC_CODES, GRPC_UNKNOWN
from router.testing.daemon import running_daemon
from tests.helpers.default_config import DEFAULT, payload, running_default

#: Bounds that only stop a hung test; no assertion depends on them.
HANG = 20


@dataclass(frozen=True)
class Vendor:
    """One vendor's ingest route on the default config, a valid body, and its error shape."""

    name: str
    path: str
    event: dict
    envelope: str | None  # the events field, or None for one event per request
    ok: int

    def body(self, event: dict | None = None) -> bytes:
        event = self.event if event is None else event
        return orjson.dumps({self.envelope: [event]} if self.envelope else event)

    def is_error(self, response: Response, status: int) -> bool:
        """Whether ``response`` is a ``status`` error in this vendor's documented shape."""
        doc = orjson.loads(response.body)
        if self.name == "conscent":
            shaped = set(doc) == {"error", "message", "statusCode"} and doc["statusCode"] == status
        elif self.name == "segmento":
            shaped = doc["status"] == "fail" and doc["hasError"] is True and doc["code"] == status
        elif self.name == "moloco":
            code = GRPC_CODES.get(status, GRPC_UNKNOWN)
            shaped = set(doc) == {"code", "message", "details"} and doc["code"] == code
        else:
            shaped = doc["success"] is False and doc["error"]["code"] == status
        return response.status == status and shaped

    def error_message(self, body: bytes) -> str:
        doc = orjson.loads(body)
        return doc["error"]["message"] if self.name == "endu" else doc["message"]


VENDORS = [
    Vendor(
        "conscent",
        "/collect/event",
        payload("conscent", "request.json")["messageBody"][0],
        "messageBody",
        201,
    ),
    Vendor(
        "segmento",
        "/api/v5/segmento/user-events",
        payload("segmento", "minimal.json")["data"][0],
        "data",
        200,
    ),
    Vendor(
        "moloco",
        "/rmp/event/v1/platforms/test/userevents",
        payload("moloco", "home.json"),
        None,
        200,
    ),
    Vendor("endu", "/api/events/record", payload("endu", "blockchain.json"), None, 200),
]
vendors = pytest.mark.parametrize("vendor", VENDORS, ids=[v.name for v in VENDORS])


# -- a raw HTTP/1.1 client ---------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Closed(Exception):
    """The server closed the connection (EOF or reset) before a whole response."""


class Raw:
    """One TCP connection; requests are bytes, responses are parsed by Content-Length."""

    def __init__(self, stream: trio.SocketStream):
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def open(cls, url: str) -> Raw:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        return cls(await trio.open_tcp_stream(host, int(port)))

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _more(self) -> None:
        try:
            chunk = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            chunk = b""
        if not chunk:
            raise Closed(self.buffer)
        self.buffer += chunk

    async def response(self) -> Response:
        with trio.fail_after(HANG):
            while b"\r\n\r\n" not in self.buffer:
                await self._more()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(self.buffer) < length:
                await self._more()
            body, self.buffer = self.buffer[:length], self.buffer[length:]
            return Response(int(status_line.split()[1]), headers, body)

    async def closed_by_server(self) -> bool:
        """Wait for EOF (or a reset) with nothing more sent; False if data arrived."""
        with trio.fail_after(HANG):
            try:
                await self._more()
            except Closed:
                return not self.buffer
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


def request(
    method: str, path: str, body: bytes = b"", *, headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: router"]
    head = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
    lines += [f"{name}: {value}" for name, value in head.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: router\r\n\r\n"


@pytest.fixture
async def daemon(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default config writes ./data/events.ndjson
    async with running_default(tmp_path, body_timeout="1s", keepalive_timeout="1s") as rd:
        yield rd


async def one(url: str, data: bytes) -> Response:
    conn = await Raw.open(url)
    try:
        await conn.send(data)
        return await conn.response()
    finally:
        await conn.aclose()


def nested(n: int) -> bytes:
    return b"[" * n + b"]" * n


def with_field(vendor: Vendor, raw: bytes) -> bytes:
    """The vendor's valid body with an unknown field ``zz`` set to the JSON text ``raw``."""
    return vendor.body({**vendor.event, "zz": "@@"}).replace(b'"@@"', raw)


# -- JSON that parses but used to break later --------------------------------------


@vendors
async def test_deep_nesting_is_a_400_in_the_vendors_shape(daemon, vendor):
    for depth in (65, 260, 1000, 2000):
        r = await one(daemon.url, request("POST", vendor.path, with_field(vendor, nested(depth))))
        assert r.status == 400, (depth, r.body)
        assert vendor.is_error(r, 400)
        assert "server.max_json_depth" in vendor.error_message(r.body)
    # Shallow enough: accepted as usual.
    r = await one(daemon.url, request("POST", vendor.path, with_field(vendor, nested(20))))
    assert r.status == vendor.ok, r.body


@vendors
async def test_the_deepest_allowed_bound_never_gives_a_5xx(tmp_path, monkeypatch, vendor):
    monkeypatch.chdir(tmp_path)
    async with running_default(tmp_path, max_json_depth=128) as rd:
        # The event's own field takes the body to exactly 128 levels.
        levels = 128 - (3 if vendor.envelope else 1)
        r = await one(rd.url, request("POST", vendor.path, with_field(vendor, nested(levels))))
        assert r.status == vendor.ok, r.body
        r = await one(rd.url, request("POST", vendor.path, with_field(vendor, nested(levels + 1))))
        assert vendor.is_error(r, 400)


ODD_VALUES = {
    # Parsed by orjson (as a float, or the last key wins): accepted.
    "integer beyond 64 bits": (b"123456789012345678901234567890", "ok"),
    "negative beyond 64 bits": (b"-99999999999999999999", "ok"),
    "largest unsigned 64-bit": (b"18446744073709551615", "ok"),
    "duplicate keys": (b'1, "zz": 2', "ok"),
    # Refused by the parser: a 400.
    "float beyond double": (b"1e400", 400),
    "lone surrogate": (b'"\\ud800"', 400),
    "NaN": (b"NaN", 400),
    "Infinity": (b"-Infinity", 400),
}


@vendors
async def test_odd_values_get_a_2xx_or_a_4xx(daemon, vendor):
    for case, (raw, expected) in ODD_VALUES.items():
        r = await one(daemon.url, request("POST", vendor.path, with_field(vendor, raw)))
        if expected == "ok":
            assert r.status == vendor.ok, (case, r.body)
        else:
            assert r.status == expected, (case, r.body)
            assert vendor.is_error(r, expected)


@vendors
async def test_undecodable_bodies_are_a_400(daemon, vendor):
    good = vendor.body()
    bodies = {
        "bom": b"\xef\xbb\xbf" + good,
        "invalid utf-8": good.replace(b'"', b'"\xff', 1),
        "overlong utf-8": with_field(vendor, b'"\xc0\xaf"'),
        "truncated": good[:-1],
        "empty": b"",
        "not json": b"events=1",
    }
    for case, body in bodies.items():
        r = await one(daemon.url, request("POST", vendor.path, body))
        assert r.status == 400, (case, r.body)
        assert vendor.is_error(r, 400)


async def test_a_codec_that_makes_a_huge_integer_dead_letters_instead_of_a_500(daemon):
    # Segmento's quantity is a string of digits the codec turns into an int,
    # beyond 64 bits here: the canonical event cannot be written by orjson.
    event = payload("segmento", "add-to-cart.json")["data"][0]
    event["event_properties"]["quantity"] = "99999999999999999999"
    r = await one(
        daemon.url,
        request("POST", "/api/v5/segmento/user-events", orjson.dumps({"data": [event]})),
    )
    assert r.status == 200, r.body
    assert daemon.metric("router_sink_events_accepted_total", sink="events_file") == 1


# -- the connection after an early answer ------------------------------------------


@vendors
@pytest.mark.parametrize("early", ["404", "405", "400"])
async def test_the_connection_answers_the_next_request_after_an_early_answer(daemon, vendor, early):
    method, path, body = {
        "404": ("POST", vendor.path + "/nowhere", vendor.body()),
        "405": ("PUT", vendor.path, vendor.body()),
        "400": ("POST", vendor.path, b"{" * 10),
    }[early]
    conn = await Raw.open(daemon.url)
    try:
        # The head first and the body later, as a client does that waits a moment
        # for an early answer: the body must still be read, then the next request.
        await conn.send(request(method, path, body)[: -len(body)])
        await trio.sleep(0.05)
        await conn.send(body + request("POST", vendor.path, vendor.body()))
        first = await conn.response()
        if early == "404":  # an unknown path, even under a vendor's: the core's shape
            assert first.status == 404 and orjson.loads(first.body)["status"] == 404
        else:
            assert vendor.is_error(first, int(early)), first.body
        second = await conn.response()
        assert second.status == vendor.ok, second.body
        await conn.send(HEALTHZ)
        assert (await conn.response()).status == 200
    finally:
        await conn.aclose()


async def test_an_unknown_path_with_a_body_keeps_the_connection(daemon):
    conn = await Raw.open(daemon.url)
    try:
        await conn.send(request("POST", "/nowhere", b"x" * 100_000) + HEALTHZ)
        first = await conn.response()
        assert first.status == 404 and orjson.loads(first.body)["status"] == 404
        assert (await conn.response()).status == 200
    finally:
        await conn.aclose()


@vendors
async def test_a_declared_oversized_body_gets_413_and_the_connection_is_closed(daemon, vendor):
    conn = await Raw.open(daemon.url)
    try:
        # Only the head: the 413 comes without the body being read.
        await conn.send(request("POST", vendor.path, headers={"Content-Length": str(2 << 20)}))
        r = await conn.response()
        assert vendor.is_error(r, 413)
        assert r.headers["connection"] == "close"
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


async def test_a_chunked_body_growing_past_the_limit_gets_413_and_a_close(daemon):
    vendor = VENDORS[0]
    conn = await Raw.open(daemon.url)
    try:
        await conn.send(
            request(
                "POST",
                vendor.path,
                headers={"Content-Length": None, "Transfer-Encoding": "chunked"},
            )
        )
        chunk = b"x" * 65536
        with trio.move_on_after(HANG):
            try:
                for _ in range(17):  # 1 MiB + 64 KiB, one chunk at a time
                    await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except trio.BrokenResourceError:
                pass  # the server answered and closed while we were still sending
        r = await conn.response()
        assert vendor.is_error(r, 413)
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


@vendors
async def test_pipelined_requests_are_answered_in_order(daemon, vendor):
    conn = await Raw.open(daemon.url)
    try:
        await conn.send(
            request("POST", vendor.path, vendor.body())
            + HEALTHZ
            + request("PUT", vendor.path, vendor.body())
            + request("POST", vendor.path, b"[")
            + request("POST", vendor.path, vendor.body())
        )
        statuses = [(await conn.response()).status for _ in range(5)]
        assert statuses == [vendor.ok, 200, 405, 400, vendor.ok]
    finally:
        await conn.aclose()


# -- abandoned and slow requests ----------------------------------------------------


@vendors
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_an_abandoned_body_gets_408_then_a_close_and_stores_nothing(daemon, vendor, framing):
    body = vendor.body()
    conn = await Raw.open(daemon.url)
    try:
        if framing == "chunked":
            head = request(
                "POST",
                vendor.path,
                headers={"Content-Length": None, "Transfer-Encoding": "chunked"},
            )
            # One complete chunk holding the whole document, and never the last chunk.
            await conn.send(head + b"%x\r\n%s\r\n" % (len(body), body))
        else:
            await conn.send(request("POST", vendor.path, body)[:-5])  # 5 bytes short
        r = await conn.response()  # after server.body_timeout (1 s here)
        assert vendor.is_error(r, 408), r.body
        assert "server.body_timeout" in vendor.error_message(r.body)
        assert r.headers["connection"] == "close"
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()
    assert daemon.metric("router_events_received_total", source=vendor.name) == 0
    assert daemon.metric("router_sink_events_accepted_total", sink="events_file") == 0


async def test_a_body_at_one_byte_a_tick_is_cut_off(daemon):
    vendor = VENDORS[0]
    body = vendor.body()
    conn = await Raw.open(daemon.url)
    try:
        await conn.send(request("POST", vendor.path, body)[: -len(body)])
        with trio.move_on_after(HANG):
            try:
                for byte in body:  # far slower than the whole body_timeout allows
                    await conn.send(bytes([byte]))
                    await trio.sleep(0.1)
            except trio.BrokenResourceError:
                pass
        r = await conn.response()
        assert vendor.is_error(r, 408)
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()
    assert daemon.metric("router_events_received_total", source="conscent") == 0


async def test_slow_headers_are_cut_off_by_the_keepalive_timeout(daemon):
    head = request("POST", VENDORS[0].path, VENDORS[0].body())
    conn = await Raw.open(daemon.url)
    try:
        closed = False
        with trio.move_on_after(HANG):
            try:
                for byte in head[:200]:
                    await conn.send(bytes([byte]))
                    await trio.sleep(0.1)
            except trio.BrokenResourceError:
                closed = True
        assert closed or await conn.closed_by_server()
        assert not conn.buffer  # closed without an answer: there was no request yet
    finally:
        await conn.aclose()


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout(daemon):
    conn = await Raw.open(daemon.url)
    try:
        await conn.send(HEALTHZ)
        assert (await conn.response()).status == 200
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


@vendors
async def test_a_head_beyond_max_header_bytes_gets_431_and_a_close(daemon, vendor):
    big = request("POST", vendor.path, vendor.body(), headers={"X-Big": "a" * 20_000})
    # In one piece (hypercorn lets it through) and in pieces (hypercorn refuses it).
    r = await one(daemon.url, big)
    assert vendor.is_error(r, 431) and r.headers["connection"] == "close"
    conn = await Raw.open(daemon.url)
    try:
        with trio.move_on_after(HANG):
            try:
                for i in range(0, len(big), 4096):
                    await conn.send(big[i : i + 4096])
                    await trio.sleep(0.01)
            except trio.BrokenResourceError:
                pass
        r = await conn.response()
        assert r.status == 431 and r.headers["connection"] == "close"
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


async def test_connections_beyond_the_cap_wait_until_one_closes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    async with running_default(tmp_path, max_connections=2, keepalive_timeout="30s") as rd:
        held = [await Raw.open(rd.url) for _ in range(2)]
        for conn in held:  # answered, so both are accepted and kept open
            await conn.send(HEALTHZ)
            assert (await conn.response()).status == 200
        waiting = await Raw.open(rd.url)  # the kernel completes it; the router does not accept
        await waiting.send(HEALTHZ)
        with trio.move_on_after(0.5):
            await waiting.response()
            pytest.fail("a connection beyond server.max_connections was served")
        await held[0].aclose()
        assert (await waiting.response()).status == 200
        await waiting.aclose()
        await held[1].aclose()


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /collect/event HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /collect/event HTTP/1.1\r\nHost: r\r\nContent-Length: -5\r\n\r\n",
        b"POST /collect/event HTTP/1.1\r\nHost: r\r\n"
        b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
    ],
    ids=["request line", "chunk size", "negative length", "two lengths"],
)
async def test_malformed_http_gets_400_and_a_close(daemon, raw):
    conn = await Raw.open(daemon.url)
    try:
        await conn.send(raw)
        r = await conn.response()
        assert r.status == 400 and r.headers["connection"] == "close"
        assert await conn.closed_by_server()
    finally:
        await conn.aclose()


async def test_the_connection_answers_the_next_request_after_a_401_or_403(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = {**DEFAULT}
    doc["sources"] = {**doc["sources"], "moloco": {"plugin": "moloco", "auth": {"keys": ["k1"]}}}
    vendor = VENDORS[2]
    async with running_daemon(doc, data_dir=tmp_path / "data") as rd:
        conn = await Raw.open(rd.url)
        try:
            for key, status in ((None, 401), ("wrong", 403), ("k1", 200)):
                body = vendor.body()
                head = request("POST", vendor.path, body, headers={"x-api-key": key})
                await conn.send(head[: -len(body)])
                await trio.sleep(0.05)
                await conn.send(body)
                r = await conn.response()
                assert r.status == status, r.body
                if status != 200:
                    assert vendor.is_error(r, status)
        finally:
            await conn.aclose()


@vendors
async def test_an_absolute_form_target_is_served_as_its_path(daemon, vendor):
    body = vendor.body()
    r = await one(daemon.url, request("POST", "http://router" + vendor.path, body))
    assert r.status == vendor.ok, r.body
    r = await one(daemon.url, request("PUT", "http://router" + vendor.path, body))
    assert vendor.is_error(r, 405)
    r = await one(daemon.url, request("GET", "http://router/healthz"))
    assert r.status == 200


@vendors
async def test_a_path_quart_normalizes_is_served_like_the_route(daemon, vendor):
    r = await one(daemon.url, request("POST", "/" + vendor.path, vendor.body()))
    assert r.status == vendor.ok, r.body
    r = await one(daemon.url, request("POST", "/" + vendor.path, b"{"))
    assert vendor.is_error(r, 400)
