"""Outbound HTTP/1.1 for sinks: a keep-alive connection pool per sink, on h11 and Trio streams.

Why hand-written: delivery is the hot path, and no well-kept library gives a
fast connection pool on Trio. Posting a 17 KB body to a local nginx on this
machine cost 341-458 µs of CPU per request through httpx and 229-334 µs
through httpcore (which is built on h11 as well), against 70-97 µs for a
minimal keep-alive client on h11 over Trio streams. This is that client, with
what a sink needs around it. ``python -m bench.outbound --compare`` measures
it against httpx in one run: a third of httpx's CPU per request one at a
time, a sixth at 16 at once (docs/performance.md).

::

    ConnectionPool.post()   wait for one of max_connections slots (pool timeout),
                            take an idle connection to the URL's origin or open one
                            (connect timeout, TLS with SNI for https), send the request
                            with a Content-Length (write timeout), read the whole answer
                            (read timeout per read), give the connection back if h11
                            says it can carry another request, else close it

- A connection is dropped on any error or cancellation, when the server
  answers ``Connection: close`` (or HTTP/1.0), and when it was idle longer
  than ``keepalive_expiry`` or the server has closed it meanwhile (the socket
  is readable while idle, as httpcore checks before reuse).
- A server may still close a kept-alive connection just as a request is
  sent on it. A request that failed on a *reused* connection before any byte
  of an answer arrived is sent once more, on a new connection; a failure on a
  new connection, a timeout, or one after part of an answer is never retried
  here (the delivery's own retries take over). Go's net/http retries so for
  idempotent requests, and a POST only if none of it was written; a POST is
  retried here too because the delivery would send the same batch again
  anyway after its backoff (delivery is at least once): this only saves the
  wait and a failure count. httpcore does not retry at all; it relies on the
  readability check alone.
- A response body is kept up to ``max_content`` bytes; beyond that it is read
  and dropped, so the connection stays usable, up to ``max_drained`` bytes in
  all, past which the connection is closed rather than read to the end.
- https trusts what httpx trusted: ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``,
  else certifi's CA bundle; the server's name is checked and sent as SNI.
- Where a proxy is set for the URL's scheme (``HTTP_PROXY``, ``HTTPS_PROXY``,
  ``ALL_PROXY``, read once when the pool is made), requests go through an
  httpx client instead, which applies the proxy and ``NO_PROXY`` as before.

Not supported, because no sink needs them: redirects, compression, cookies,
HTTP/2, streamed request bodies.

Errors::

    OutboundError            the request got no complete answer
    ├── OutboundTimeout          nothing happened for ``timeout`` seconds
    │   ├── ConnectTimeout           connecting (TCP and TLS)
    │   ├── WriteTimeout             sending the request
    │   ├── ReadTimeout              waiting for the answer
    │   └── PoolTimeout              waiting for a free connection slot
    ├── ConnectError         the connection could not be made (refused, DNS, TLS)
    ├── WriteError           the connection broke while sending
    ├── ReadError            the connection broke while reading the answer
    ├── RemoteProtocolError  the server closed without answering, or answered badly
    ├── LocalProtocolError   the request itself is not valid HTTP (a header value)
    └── InvalidURL           not an http:// or https:// URL with a host
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies

import h11
import orjson
import structlog
import trio

from router.version import __version__

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionPool",
    "Headers",
    "InvalidURL",
    "LocalProtocolError",
    "OutboundError",
    "OutboundTimeout",
    "PoolTimeout",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "Response",
    "WriteError",
    "WriteTimeout",
]

log = structlog.get_logger()

#: Bytes of a response body kept in :attr:`Response.content`.
MAX_CONTENT = 1024 * 1024
#: Bytes of a response body read in all; a longer one closes the connection.
MAX_DRAINED = 16 * 1024 * 1024
#: Seconds an idle connection is kept for reuse (httpx's default too).
KEEPALIVE_EXPIRY = 5.0
#: Bytes asked for per read.
READ_SIZE = 64 * 1024
USER_AGENT = f"event-router/{__version__}"


class OutboundError(Exception):
    """A request got no complete answer."""

    #: True when nothing of an answer had arrived: safe to send again on a
    #: new connection if this one had been reused (the server closed it).
    nothing_received = False


class OutboundTimeout(OutboundError):
    """Nothing happened for the pool's ``timeout`` seconds."""


class ConnectTimeout(OutboundTimeout):
    """The TCP connection or the TLS handshake took longer than the timeout."""


class WriteTimeout(OutboundTimeout):
    """The server took no request bytes for the timeout."""


class ReadTimeout(OutboundTimeout):
    """No answer bytes came for the timeout."""


class PoolTimeout(OutboundTimeout):
    """Every connection slot stayed busy for the timeout."""


class ConnectError(OutboundError):
    """The connection could not be made: refused, unknown host, TLS failure."""


class WriteError(OutboundError):
    """The connection broke while the request was sent."""


class ReadError(OutboundError):
    """The connection broke while the answer was read."""


class RemoteProtocolError(OutboundError):
    """The server closed without answering, or its answer is not valid HTTP/1.1."""


class LocalProtocolError(OutboundError):
    """The request is not valid HTTP/1.1 (a header name or value h11 refuses)."""


class InvalidURL(OutboundError):
    """The URL is not http:// or https:// with a host and a valid port."""


class Headers(Mapping[str, str]):
    """Response headers; names are case-insensitive, repeated fields joined by ", "."""

    __slots__ = ("_fields", "_map")

    def __init__(self, fields: list[tuple[bytes, bytes]]):
        #: As h11 gives them: (lowercased name, value) pairs, in order.
        self._fields = fields
        self._map: dict[str, str] | None = None

    def _decoded(self) -> dict[str, str]:
        # Decoded on first use: a 2xx whose headers no one reads costs nothing.
        if self._map is None:
            found: dict[str, str] = {}
            for raw_name, raw_value in self._fields:
                name = raw_name.decode("latin-1")
                value = raw_value.decode("latin-1")
                found[name] = f"{found[name]}, {value}" if name in found else value
            self._map = found
        return self._map

    def __getitem__(self, name: str) -> str:
        return self._decoded()[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"Headers({self._decoded()!r})"


class Response:
    """An upstream's answer, read whole (up to the pool's ``max_content`` bytes)."""

    __slots__ = ("content", "headers", "status_code", "truncated")

    def __init__(self, status_code: int, headers: Headers, content: bytes, *, truncated: bool):
        self.status_code = status_code
        self.headers = headers
        #: The body, or its first ``max_content`` bytes when :attr:`truncated`.
        self.content = content
        self.truncated = truncated

    @property
    def text(self) -> str:
        """The body decoded with the Content-Type's charset (default UTF-8), errors replaced."""
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (orjson's errors if it is not)."""
        return orjson.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


class _Target(NamedTuple):
    """Where a URL's requests go, parsed once per URL."""

    origin: tuple[str, str, int]
    authority: str
    target: bytes
    authorization: str | None


@functools.lru_cache(maxsize=256)
def _parse(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        raise InvalidURL(f"{url!r} is not an http:// or https:// URL with a host")
    default = 443 if scheme == "https" else 80
    port = port or default
    authority = f"[{host}]" if ":" in host else host
    if port != default:
        authority = f"{authority}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authorization = None
    if parts.username is not None:  # as httpx did: user:password@ in the URL is Basic auth
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return _Target((scheme, host, port), authority, target.encode(), authorization)


def _reason(exc: BaseException) -> str:
    """What broke, from a Trio error's cause (the OSError or SSLError under it)."""
    cause = exc.__cause__ or exc.__context__ or exc
    return str(cause) or type(cause).__name__


class _Connection:
    """One HTTP/1.1 connection: its stream, its h11 state and when it went idle."""

    __slots__ = ("h11", "idle_since", "origin", "requests", "socket", "stream")

    def __init__(self, stream: trio.abc.Stream, socket: trio.socket.SocketType, origin: Any):
        self.stream = stream
        self.socket = socket
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        #: Requests sent on it before the current one (> 0: a reused connection).
        self.requests = 0
        self.idle_since = 0.0

    def close(self) -> None:
        # Synchronous and immediate: an HTTP client owes a server no TLS close_notify.
        self.socket.close()


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections for one sink: at most ``max_connections`` in use.

    :param timeout: seconds for each step: waiting for a slot, connecting,
        each write and each read (what ``httpx.Timeout(timeout)`` means).
    :param pool_timeout: seconds to wait for a slot, if not ``timeout``.
    :param ssl_context: for https; by default one trusting what httpx
        trusts (see the module's docstring), made on the first https request.
    """

    def __init__(
        self,
        *,
        max_connections: int = 10,
        timeout: float = 10.0,
        pool_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_content: int = MAX_CONTENT,
        max_drained: int = MAX_DRAINED,
    ):
        self.max_connections = max_connections
        self.timeout = timeout
        self.pool_timeout = timeout if pool_timeout is None else pool_timeout
        self.keepalive_expiry = keepalive_expiry
        self.max_content = max_content
        self.max_drained = max(max_drained, max_content)
        self._ssl_context = ssl_context
        self._slots = trio.Semaphore(max_connections)
        #: Idle connections per origin, the most recently used last.
        self._idle: dict[Any, list[_Connection]] = {}
        #: Connections open, in use or idle (one being opened counts once it is).
        self._open = 0
        #: Connections opened so far (tests and benchmarks read it).
        self.connections_opened = 0
        self.is_closed = False
        self._httpx: httpx.AsyncClient | None = None
        proxies = getproxies()
        #: URL schemes whose requests go through httpx, for its proxy support.
        self._proxied = {
            scheme for scheme in ("http", "https") if proxies.get(scheme) or proxies.get("all")
        }

    async def post(
        self, url: str, *, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Response | httpx.Response:
        """POST ``content`` to ``url`` and read the answer; raises an :class:`OutboundError`
        (or, through a proxy, httpx's answer and errors)."""
        return await self.request("POST", url, content=content, headers=headers)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Response | httpx.Response:
        """Send one request and read its whole answer (see the module's docstring)."""
        if self.is_closed:
            raise RuntimeError("the connection pool is closed")
        where = _parse(url)
        if where.origin[0] in self._proxied:
            return await self.httpx_client().request(method, url, content=content, headers=headers)
        request = self._request_head(method, where, content, headers)
        with trio.move_on_after(self.pool_timeout) as waited:
            await self._slots.acquire()
        if waited.cancelled_caught:
            raise PoolTimeout(
                f"all {self.max_connections} connections stayed busy for {self.pool_timeout:g} s"
            )
        try:
            conn = self._take_idle(where.origin)
            if conn is not None:
                try:
                    return await self._exchange(conn, request, content)
                except (WriteError, ReadError, RemoteProtocolError) as exc:
                    if not exc.nothing_received:
                        raise
                    # The server had closed the kept-alive connection: no answer
                    # was started, so once more on a new connection.
                    log.debug("outbound.retry_on_new_connection", url=url, error=repr(exc))
            return await self._exchange(await self._connect(where.origin), request, content)
        finally:
            self._slots.release()

    @property
    def open_connections(self) -> int:
        """Connections open now, in use or idle."""
        return self._open

    def httpx_client(self) -> httpx.AsyncClient:
        """An httpx client with this pool's limits and timeout, made on first use, closed
        with the pool: for a plugin's own calls beyond ``post`` (``Sink.client``)."""
        if self._httpx is None:
            import httpx  # only for plugins that ask for it

            self._httpx = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(
                    max_connections=self.max_connections,
                    max_keepalive_connections=self.max_connections,
                ),
            )
        return self._httpx

    async def aclose(self) -> None:
        """Close every idle connection; one in use is closed when its request ends."""
        self.is_closed = True
        for idle in self._idle.values():
            for conn in idle:
                self._drop(conn)
        self._idle.clear()
        if self._httpx is not None:
            await self._httpx.aclose()

    # -- one request -----------------------------------------------------------------

    @staticmethod
    def _request_head(
        method: str, where: _Target, content: bytes, headers: Mapping[str, str] | None
    ) -> h11.Request:
        given = {name.lower(): value for name, value in headers.items()} if headers else {}
        # The body is always sent whole with its length.
        given.pop("content-length", None)
        given.pop("transfer-encoding", None)
        fields = [("host", given.pop("host", where.authority))]
        given.setdefault("accept", "*/*")
        given.setdefault("user-agent", USER_AGENT)
        if where.authorization is not None:
            given.setdefault("authorization", where.authorization)
        fields.extend(given.items())
        fields.append(("content-length", str(len(content))))
        try:
            return h11.Request(method=method, target=where.target, headers=fields)
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None

    async def _exchange(self, conn: _Connection, request: h11.Request, content: bytes) -> Response:
        """Send the request on ``conn``, read the answer, keep ``conn`` if it is reusable."""
        reusable = False
        try:
            state = conn.h11
            data = state.send(request)
            if content:
                data += state.send(h11.Data(data=content))
            data += state.send(h11.EndOfMessage())
            broken: WriteError | None = None
            try:
                await self._send_all(conn, data)
            except WriteError as exc:
                # A server may answer (413…) and close before reading it all: read that.
                broken = exc
            try:
                response, complete = await self._read_response(conn)
            except (ReadError, RemoteProtocolError) as exc:
                if broken is not None:
                    broken.nothing_received = exc.nothing_received
                    raise broken from None
                raise
            reusable = (
                complete
                and broken is None
                and state.our_state is h11.DONE
                and state.their_state is h11.DONE
            )
            return response
        finally:
            conn.requests += 1
            if reusable and not self.is_closed:
                conn.h11.start_next_cycle()
                conn.idle_since = trio.current_time()
                self._idle.setdefault(conn.origin, []).append(conn)
            else:
                self._drop(conn)

    # A bare CancelScope, not trio.fail_after: this runs two or three times a request.

    async def _send_all(self, conn: _Connection, data: bytes) -> None:
        try:
            with trio.CancelScope(deadline=trio.current_time() + self.timeout) as scope:
                await conn.stream.send_all(data)
        except trio.BrokenResourceError as exc:
            error = WriteError(_reason(exc))
            error.nothing_received = True
            raise error from exc
        if scope.cancelled_caught:
            raise WriteTimeout(f"the server took no data for {self.timeout:g} s")

    async def _receive(self, conn: _Connection, received: bool) -> bytes:
        data = b""
        try:
            with trio.CancelScope(deadline=trio.current_time() + self.timeout) as scope:
                data = await conn.stream.receive_some(READ_SIZE)
        except trio.BrokenResourceError as exc:
            error = ReadError(_reason(exc))
            error.nothing_received = not received
            raise error from exc
        if scope.cancelled_caught:
            raise ReadTimeout(f"no answer for {self.timeout:g} s")
        return data

    async def _read_response(self, conn: _Connection) -> tuple[Response, bool]:
        """The answer, and whether it was read to its end."""
        state = conn.h11
        received = False
        status = 0
        fields: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        kept = drained = 0
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                raise RemoteProtocolError(f"invalid answer: {exc}") from None
            if event is h11.NEED_DATA:
                data = await self._receive(conn, received)
                if not data and not received:
                    error = RemoteProtocolError("the server closed the connection, no answer")
                    error.nothing_received = True
                    raise error
                received = True
                state.receive_data(data)
            elif type(event) is h11.Data:
                drained += len(event.data)
                if kept < self.max_content:
                    chunk = bytes(event.data[: self.max_content - kept])
                    chunks.append(chunk)
                    kept += len(chunk)
                if drained > self.max_drained:
                    break  # not worth reading on: the connection is closed instead
            elif type(event) is h11.Response:
                status = event.status_code
                fields = list(event.headers)
            elif type(event) is h11.EndOfMessage:
                content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                return Response(status, Headers(fields), content, truncated=drained > kept), True
            elif type(event) is h11.ConnectionClosed:
                raise RemoteProtocolError("the server closed the connection mid-answer")
            # InformationalResponse (100 Continue…): the final answer follows.
        content = b"".join(chunks)
        return Response(status, Headers(fields), content, truncated=True), False

    # -- connections -----------------------------------------------------------------

    def _take_idle(self, origin: Any) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = trio.current_time()
        while idle:
            conn = idle.pop()
            # Readable while idle means the server closed it (or sent junk): not reusable.
            if now - conn.idle_since < self.keepalive_expiry and not conn.socket.is_readable():
                return conn
            self._drop(conn)
        return None

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1

    def _make_room(self) -> None:
        """Close the longest-idle connection when every slot has one (other origins')."""
        if self._open < self.max_connections:
            return
        oldest = min(
            (conn for idle in self._idle.values() for conn in idle),
            key=lambda conn: conn.idle_since,
            default=None,
        )
        if oldest is not None:
            self._idle[oldest.origin].remove(oldest)
            self._drop(oldest)

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        self._make_room()
        tcp: trio.SocketStream | None = None
        try:
            with trio.fail_after(self.timeout):
                try:
                    tcp = await trio.open_tcp_stream(host, port)
                except OSError as exc:
                    raise ConnectError(str(exc) or type(exc).__name__) from exc
                stream: trio.abc.Stream = tcp
                if scheme == "https":
                    tls = trio.SSLStream(
                        tcp, self._tls_context(), server_hostname=host, https_compatible=True
                    )
                    try:
                        await tls.do_handshake()
                    except trio.BrokenResourceError as exc:
                        raise ConnectError(_reason(exc)) from exc
                    stream = tls
        except BaseException as exc:
            if tcp is not None:
                tcp.socket.close()
            if isinstance(exc, trio.TooSlowError):
                raise ConnectTimeout(
                    f"no connection to {host}:{port} within {self.timeout:g} s"
                ) from None
            raise
        self._open += 1
        self.connections_opened += 1
        return _Connection(stream, tcp.socket, origin)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            # The CAs httpx trusted, so that moving off httpx trusts no more and no less.
            if os.environ.get("SSL_CERT_FILE"):
                context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                context = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                context = ssl.create_default_context(cafile=certifi.where())
            self._ssl_context = context
        return self._ssl_context
