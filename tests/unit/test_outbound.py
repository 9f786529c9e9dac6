"""ConnectionPool against real loopback servers: reuse, stale connections, faults, TLS, limits."""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import httpx
import pytest
import trio
import trustme
from structlog.testing import capture_logs

from router import Sink, SinkRejected, SinkUnavailable
from router.outbound import (
    ConnectError,
    ConnectionPool,
    ConnectTimeout,
    InvalidURL,
    OutboundError,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    WriteTimeout,
)
from router.testing.upstream import Close, FakeUpstream, Hang, Hold, Reply, Reset

BODY = b'{"event":"x","pad":"' + b"p" * 17_000 + b'"}'
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Pools made here talk to the servers directly, whatever the environment says."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# -- a raw HTTP/1.1 server, for answers FakeUpstream does not give ----------------------


class Peer:
    """One accepted connection: read whole requests, write raw bytes."""

    def __init__(self, stream: trio.abc.Stream, server: RawServer):
        self.stream = stream
        self.server = server
        self._buffer = b""

    async def read_request(self) -> bytes | None:
        """The next request's body (its head is checked for a Content-Length), or None at EOF."""
        while b"\r\n\r\n" not in self._buffer:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self._buffer += data
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(fields["content-length"])
        while len(rest) < length:
            rest += await self.stream.receive_some(65536)
        self._buffer = rest[length:]
        self.server.requests += 1
        return rest[:length]

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    def reset(self) -> None:
        """Abort with a TCP RST."""
        sock = self.stream.socket if isinstance(self.stream, trio.SocketStream) else None
        assert sock is not None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class RawServer:
    """A loopback server running ``handler(peer)`` per connection; counts connections."""

    def __init__(self, handler: Callable[[Peer], Awaitable[None]], port: int, scheme: str):
        self.handler = handler
        self.connections = 0
        self.requests = 0
        self.url = f"{scheme}://127.0.0.1:{port}/in"
        self.port = port

    async def serve(self, stream: trio.abc.Stream) -> None:
        peer = Peer(stream, self)
        self.connections += 1
        try:
            await self.handler(peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away (or failed the TLS handshake)
        finally:
            await trio.aclose_forcefully(stream)


@asynccontextmanager
async def raw_server(
    handler: Callable[[Peer], Awaitable[None]], *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[RawServer]:
    listeners: list = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    if tls is not None:
        listeners = [trio.SSLListener(one, tls, https_compatible=True) for one in listeners]
    server = RawServer(handler, port, "https" if tls else "http")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, server.serve, listeners)
        yield server
        nursery.cancel_scope.cancel()


def ok(body: bytes = b"", *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def answer_all(peer: Peer) -> None:
    while await peer.read_request() is not None:
        await peer.send(ok(b"{}"))


# -- keep-alive --------------------------------------------------------------------------


async def test_sequential_requests_share_one_kept_alive_connection():
    async with FakeUpstream.running() as upstream:
        pool = ConnectionPool(max_connections=4)
        for n in range(5):
            response = await pool.post(upstream.url + "/in", content=BODY + str(n).encode())
            assert response.status_code == 200
        await pool.aclose()
    assert [r.connection for r in upstream.requests] == [0] * 5
    assert [r.body[-1:] for r in upstream.requests] == [b"0", b"1", b"2", b"3", b"4"]
    assert pool.connections_opened == 1


async def test_the_request_carries_host_length_and_the_given_headers():
    async with FakeUpstream.running() as upstream:
        pool = ConnectionPool()
        await pool.post(upstream.url + "/in?k=v", content=b"{}", headers={"X-Key": "s3"})
        await pool.aclose()
    (req,) = upstream.requests
    assert (req.method, req.path, req.query) == ("POST", "/in", "k=v")
    assert req.headers["host"] == upstream.url.removeprefix("http://")
    assert req.headers["content-length"] == "2"
    assert req.headers["x-key"] == "s3"
    assert req.headers["user-agent"].startswith("event-router/")


async def test_a_connection_close_answer_is_not_reused():
    async def close_each(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(ok(b"done", "connection: close"))

    async with raw_server(close_each) as server:
        pool = ConnectionPool()
        for _ in range(3):
            assert (await pool.post(server.url, content=b"{}")).content == b"done"
        await pool.aclose()
    assert server.connections == 3


async def test_an_http_1_0_answer_is_not_reused():
    async def old(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async with raw_server(old) as server:
        pool = ConnectionPool()
        for _ in range(2):
            assert (await pool.post(server.url, content=b"{}")).text == "ok"
    assert server.connections == 2


async def test_an_idle_connection_past_keepalive_expiry_is_not_reused():
    async with FakeUpstream.running() as upstream:
        pool = ConnectionPool(keepalive_expiry=0)
        for _ in range(3):
            await pool.post(upstream.url, content=b"{}")
    assert [r.connection for r in upstream.requests] == [0, 1, 2]


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept():
    async def chunked(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            await peer.send(b"5\r\nhello\r\n")
            await peer.send(b"6\r\n world\r\n0\r\n\r\n")

    async with raw_server(chunked) as server:
        pool = ConnectionPool()
        first = await pool.post(server.url, content=b"{}")
        second = await pool.post(server.url, content=b"{}")
    assert first.content == second.content == b"hello world"
    assert server.connections == 1


# -- stale and broken connections --------------------------------------------------------


async def test_a_kept_alive_connection_closed_as_it_is_reused_is_retried_once():
    async with FakeUpstream.running() as upstream:
        upstream.script(Reply(200), Close())  # the 2nd request is read, then the FIN
        pool = ConnectionPool()
        await pool.post(upstream.url + "/in", content=b'{"n":1}')
        response = await pool.post(upstream.url + "/in", content=b'{"n":2}')
    assert response.status_code == 200
    assert [(r.connection, r.body) for r in upstream.requests] == [
        (0, b'{"n":1}'),
        (0, b'{"n":2}'),
        (1, b'{"n":2}'),
    ]
    # No event lost: both bodies were answered 2xx.
    assert [r.body for r in upstream.accepted] == [b'{"n":1}', b'{"n":2}']


async def test_a_reset_of_a_reused_connection_before_any_answer_is_retried_once():
    async with FakeUpstream.running() as upstream:
        upstream.script(Reply(200), Reset(), Reset())
        pool = ConnectionPool()
        await pool.post(upstream.url, content=b"{}")
        # Retried once on a new connection, which is reset too: that is the error.
        with pytest.raises(ReadError):
            await pool.post(upstream.url, content=b"{}")
    assert [r.connection for r in upstream.requests] == [0, 0, 1]


async def test_a_new_connection_closed_without_an_answer_is_not_retried():
    async with FakeUpstream.running() as upstream:
        upstream.script(Close())
        pool = ConnectionPool()
        with pytest.raises(RemoteProtocolError, match="no answer"):
            await pool.post(upstream.url, content=b"{}")
        assert len(upstream.requests) == 1
        # The pool is fine afterwards.
        assert (await pool.post(upstream.url, content=b"{}")).status_code == 200


async def test_a_connection_the_server_closed_while_idle_is_not_reused():
    closed = trio.Event()

    async def one_then_close(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(ok())
        await peer.stream.aclose()
        closed.set()

    async with raw_server(one_then_close) as server:
        pool = ConnectionPool()
        await pool.post(server.url, content=b"{}")
        await closed.wait()
        with capture_logs() as logs:
            assert (await pool.post(server.url, content=b"{}")).status_code == 200
    # Found closed before use, so no request was lost and none was retried.
    assert server.connections == 2
    assert logs == []


async def test_a_reset_mid_answer_is_an_error_and_not_retried():
    async def partial_then_reset(peer: Peer) -> None:
        while await peer.read_request() is not None:
            if server.requests == 1:
                await peer.send(ok(b"{}"))
            else:
                await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                peer.reset()
                return

    async with raw_server(partial_then_reset) as server:
        pool = ConnectionPool()
        await pool.post(server.url, content=b"{}")
        with pytest.raises(ReadError, match="reset"):
            await pool.post(server.url, content=b"{}")
    # Part of an answer came: the request may have been taken, so it is not sent again here.
    assert (server.connections, server.requests) == (1, 2)


async def test_a_close_mid_body_is_an_error_and_not_retried():
    async def truncated(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 503 Busy\r\ncontent-length: 100\r\n\r\nhalf")

    async with raw_server(truncated) as server:
        pool = ConnectionPool()
        with pytest.raises(RemoteProtocolError, match="invalid answer"):
            await pool.post(server.url, content=b"{}")
    assert server.requests == 1


async def test_a_refused_connection_is_a_connect_error():
    async with FakeUpstream.running() as upstream:
        url = upstream.url
    with pytest.raises(ConnectError):
        await ConnectionPool().post(url, content=b"{}")


async def test_a_url_that_is_not_http_is_refused_before_any_io():
    with pytest.raises(InvalidURL):
        await ConnectionPool().post("ftp://h/x", content=b"")
    with pytest.raises(InvalidURL):
        await ConnectionPool().post("http://h:99999/x", content=b"")


# -- timeouts ----------------------------------------------------------------------------


async def test_an_upstream_that_never_answers_is_a_read_timeout():
    async with FakeUpstream.running() as upstream:
        upstream.script(Hang())
        pool = ConnectionPool(timeout=0.2)
        started = trio.current_time()
        with pytest.raises(ReadTimeout):
            await pool.post(upstream.url, content=b"{}")
        assert trio.current_time() - started >= 0.2  # not before the timeout
        # The hung connection was dropped; the next request gets a new one.
        assert (await pool.post(upstream.url, content=b"{}")).status_code == 200
    assert [r.connection for r in upstream.requests] == [0, 1]


async def test_a_listener_with_a_full_backlog_is_a_connect_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once its queue is full, the kernel drops SYNs
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(3)]
    try:
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        with pytest.raises(ConnectTimeout):
            await ConnectionPool(timeout=0.3).post(f"http://127.0.0.1:{port}/", content=b"")
    finally:
        for sock in (*fillers, listener):
            sock.close()


async def test_an_upstream_that_reads_nothing_is_a_write_timeout():
    async def never_reads(peer: Peer) -> None:
        await trio.sleep_forever()

    async with raw_server(never_reads) as server:
        pool = ConnectionPool(timeout=0.2)
        # Larger than what the kernel's socket buffers take.
        with pytest.raises(WriteTimeout):
            await pool.post(server.url, content=b"x" * (64 * 1024 * 1024))


async def test_waiting_for_a_connection_slot_is_a_pool_timeout():
    release = trio.Event()
    async with FakeUpstream.running() as upstream, trio.open_nursery() as nursery:
        upstream.script(Hold(release))
        pool = ConnectionPool(max_connections=1, timeout=30, pool_timeout=0.2)
        nursery.start_soon(partial(pool.post, upstream.url, content=b"{}"))
        await upstream.wait_for(1)
        with pytest.raises(PoolTimeout):
            await pool.post(upstream.url, content=b"{}")
        release.set()


async def test_a_cancelled_request_drops_its_connection_and_frees_its_slot():
    async with FakeUpstream.running() as upstream:
        upstream.script(Hang())
        pool = ConnectionPool(max_connections=1, timeout=30)
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(pool.post, upstream.url, content=b"{}"))
                await upstream.wait_for(1)
                scope.cancel()
        assert (await pool.post(upstream.url, content=b"{}")).status_code == 200
    assert [r.connection for r in upstream.requests] == [0, 1]


# -- answers -----------------------------------------------------------------------------


async def test_a_large_answer_is_kept_up_to_max_content_and_the_connection_reused():
    async with FakeUpstream.running(default=Reply(500, body=b"e" * 50_000)) as upstream:
        pool = ConnectionPool(max_content=1000, max_drained=100_000)
        response = await pool.post(upstream.url, content=b"{}")
        assert (len(response.content), response.truncated) == (1000, True)
        await pool.post(upstream.url, content=b"{}")
    assert [r.connection for r in upstream.requests] == [0, 0]


async def test_an_answer_beyond_max_drained_is_not_read_on_and_its_connection_closed():
    async with FakeUpstream.running(default=Reply(200, body=b"e" * 5_000_000)) as upstream:
        pool = ConnectionPool(max_content=1000, max_drained=100_000)
        response = await pool.post(upstream.url, content=b"{}")
        assert (response.status_code, len(response.content)) == (200, 1000)
        await pool.post(upstream.url, content=b"{}")
    assert [r.connection for r in upstream.requests] == [0, 1]


async def test_headers_are_case_insensitive_and_text_uses_the_charset():
    async def latin(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(ok("café".encode("latin-1"), "Content-Type: text/plain; charset=latin-1"))

    async with raw_server(latin) as server:
        response = await ConnectionPool().post(server.url, content=b"{}")
    assert response.headers["CONTENT-TYPE"] == response.headers.get("content-type")
    assert response.headers.get("retry-after") is None
    assert response.text == "café"


async def test_json_parses_the_body():
    async with FakeUpstream.running(default=Reply(200, body={"ok": [1]})) as upstream:
        assert (await ConnectionPool().post(upstream.url, content=b"{}")).json() == {"ok": [1]}


# -- through Sink.post: the errors and answers a sink maps -------------------------------


def sink(url: str, pool: ConnectionPool | None = None) -> Sink:
    return Sink("out", {"url": url}, client=pool or ConnectionPool(timeout=0.5))


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(429, headers={"retry-after": "7"}), SinkUnavailable, 7.0),
        (Reply(429, headers={"X-RateLimit-Reset": "3"}), SinkUnavailable, 3.0),
        (Reply(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), SinkUnavailable, 0),
        (Reply(503), SinkUnavailable, None),
        (Reply(400, body="bad event"), SinkRejected, None),
    ],
)
async def test_sink_post_maps_answers_through_check_response(reply, error, retry_after):
    async with FakeUpstream.running(default=reply) as upstream:
        with pytest.raises(error) as caught:
            await sink(upstream.url).post(upstream.url, content=b"{}")
    assert caught.value.status == reply.status
    if error is SinkUnavailable:
        assert caught.value.retry_after == retry_after
    else:
        assert caught.value.body == "bad event"


async def test_sink_post_keeps_only_the_start_of_an_error_body():
    async with FakeUpstream.running(default=Reply(500, body="e" * 100_000)) as upstream:
        with pytest.raises(SinkUnavailable) as caught:
            await sink(upstream.url).post(upstream.url, content=b"{}")
    assert len(caught.value.body) == 2048


async def test_sink_post_maps_a_timeout_and_a_refused_connection_like_before():
    async with FakeUpstream.running(default=Hang()) as upstream:
        with pytest.raises(SinkUnavailable, match=r"^timeout: ReadTimeout$"):
            await sink(upstream.url).post(upstream.url, content=b"{}")
        url = upstream.url
    with pytest.raises(SinkUnavailable, match=r"^connection failed: ConnectError: "):
        await sink(url).post(url, content=b"{}")


async def test_sink_client_is_an_httpx_client_made_once_and_closed_with_the_pool():
    pool = ConnectionPool(max_connections=3, timeout=4)
    out = sink("http://up", pool)
    client = out.client
    assert isinstance(client, httpx.AsyncClient) and out.client is client
    assert client.timeout.read == 4
    await pool.aclose()
    assert client.is_closed


async def test_a_client_a_sink_sets_itself_is_what_post_sends_through():
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(204)

    out = sink("http://up")
    out.client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    response = await out.post("http://up/in", content=b"{}")
    assert (response.status_code, seen) == (204, ["http://up/in"])


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str, seen: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    if seen is not None:
        context.sni_callback = lambda sock, name, ctx: seen.append(name)
    return context


async def test_https_with_sni_on_a_kept_alive_connection(ca):
    seen: list[str] = []
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with raw_server(answer_all, tls=server_context(ca, "localhost", seen=seen)) as server:
        pool = ConnectionPool(ssl_context=trusting)
        url = f"https://localhost:{server.port}/in"
        for _ in range(3):
            assert (await pool.post(url, content=BODY)).content == b"{}"
        await pool.aclose()
    assert seen == ["localhost"]
    assert server.connections == 1


async def test_an_untrusted_certificate_is_sink_unavailable(ca):
    # The pool's default context trusts the system's CAs, not this test's.
    async with raw_server(answer_all, tls=server_context(ca, "localhost")) as server:
        url = f"https://localhost:{server.port}/in"
        failed = r"connection failed: ConnectError: .*CERTIFICATE_VERIFY_FAILED"
        with pytest.raises(SinkUnavailable, match=failed):
            await sink(url).post(url, content=b"{}")
    assert server.requests == 0


async def test_a_certificate_for_another_name_is_refused(ca):
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with raw_server(answer_all, tls=server_context(ca, "other.example")) as server:
        pool = ConnectionPool(ssl_context=trusting)
        with pytest.raises(ConnectError, match="match"):
            await pool.post(f"https://localhost:{server.port}/in", content=b"{}")


async def test_ssl_cert_file_is_trusted_as_httpx_trusted_it(ca, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    async with raw_server(answer_all, tls=server_context(ca, "localhost")) as server:
        pool = ConnectionPool()
        response = await pool.post(f"https://localhost:{server.port}/in", content=b"{}")
    assert response.status_code == 200


# -- proxies -----------------------------------------------------------------------------


async def test_with_a_proxy_set_requests_go_through_httpx_and_the_proxy(monkeypatch):
    async with FakeUpstream.running() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        pool = ConnectionPool()
        response = await pool.post("http://sink.example/in", content=b"{}")
        await pool.aclose()
    assert response.status_code == 200
    (request,) = proxy.requests
    assert request.headers["host"] == "sink.example"
    assert pool.connections_opened == 0


# -- the connection limit ----------------------------------------------------------------


async def test_concurrent_posts_open_at_most_max_connections():
    release = trio.Event()
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda request: Hold(release)
        pool = ConnectionPool(max_connections=3)
        async with trio.open_nursery() as nursery:
            for n in range(12):
                nursery.start_soon(partial(pool.post, upstream.url, content=str(n).encode()))
            await upstream.wait_for(3)
            # Three requests are held; the nine others wait for a slot.
            assert len(upstream.requests) == 3
            release.set()
    assert sorted(r.body for r in upstream.accepted) == sorted(str(n).encode() for n in range(12))
    assert {r.connection for r in upstream.requests} == {0, 1, 2}
    assert pool.connections_opened == 3


async def test_a_new_origin_closes_an_idle_connection_when_every_slot_has_one():
    async with FakeUpstream.running() as one, FakeUpstream.running() as two:
        pool = ConnectionPool(max_connections=1)
        await pool.post(one.url, content=b"{}")
        await pool.post(two.url, content=b"{}")
        await pool.post(one.url, content=b"{}")
    assert [r.connection for r in one.requests] == [0, 1]
    assert pool.connections_opened == 3


async def test_every_event_arrives_through_an_upstream_that_closes_and_resets_at_random():
    """400 posts, 8 at once, 4 connections; the upstream misbehaves a third of the time."""
    pool = ConnectionPool(max_connections=4, timeout=10)
    rng = random.Random(7)
    answered: set[bytes] = set()
    most_open = 0

    async def misbehave(peer: Peer) -> None:
        nonlocal most_open
        served = 0
        while (body := await peer.read_request()) is not None:
            most_open = max(most_open, pool.open_connections)
            roll = rng.random()
            if roll < 0.1 and served:
                return  # read, then closed as if idle too long: a stale connection
            if roll < 0.2:
                peer.reset()  # read, then reset: no answer
                return
            answered.add(body)
            if roll < 0.3:
                await peer.send(ok(b"{}", "connection: close"))
                return
            await peer.send(ok(b"{}"))
            if roll < 0.35:
                return  # answered, then closed while idle
            served += 1

    async def deliver(bodies: list[bytes]) -> None:
        for body in bodies:
            for _ in range(30):  # as a sink's runner would retry
                try:
                    await pool.post(server.url, content=body)
                    break
                except OutboundError:
                    pass

    bodies = [f'{{"n":{n}}}'.encode() for n in range(400)]
    async with raw_server(misbehave) as server, trio.open_nursery() as nursery:
        for task in range(8):
            nursery.start_soon(deliver, bodies[task::8])
    assert answered == set(bodies)
    assert 1 <= most_open <= 4
