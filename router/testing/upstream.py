"""A fake vendor API on loopback that records what it receives and injects faults.

Tests of the daemon must prove that no event is lost when an upstream answers
500 for a while, asks to slow down with 429 + ``Retry-After``, is too slow,
resets connections, refuses them for a period or rejects some events with 400.
That needs a *real* HTTP server on ``127.0.0.1`` whose every reply, and every
misbehaviour below HTTP, a test can script.

It is hand-written on Trio sockets and h11 because no well-kept library offers
a fault-injecting HTTP server on Trio: hypercorn and quart can only answer
with HTTP, and cannot reset a TCP connection, stop listening on a port and
listen again, or read a request and never answer it.

Usage::

    async with FakeUpstream.running() as upstream:
        upstream.script(Reply(500), Reply(429, headers={"retry-after": "1"}))
        upstream.handler = lambda req: Reply(400) if b"bad" in req.body else None
        ...  # point the daemon at upstream.url
        with trio.fail_after(5):
            await upstream.wait_for(lambda up: len(up.accepted) >= 10)

Each request's action is, in order: the next scripted action if any
(:meth:`FakeUpstream.script`, consumed one request at a time), else the
handler's answer if it is not ``None``, else :attr:`FakeUpstream.default`.

Actions:

- :class:`Reply` ``(status, body, headers)``: answer (``body`` may be bytes,
  str, or anything ``orjson`` encodes, which sets ``content-type: application/json``);
- :class:`Delay` ``(seconds, then)``: wait, then do ``then`` (for client timeouts);
- :class:`Hold` ``(release, then)``: wait for a :class:`trio.Event`, then do ``then``;
- :class:`Hang`: never answer; the connection stays open until the client closes it;
- :class:`Reset`: abort the connection with a TCP RST (``SO_LINGER`` 0, then close);
- :class:`Close`: close the connection (FIN) without answering.

Every request is recorded once its body has been read, whatever its action, in
:attr:`FakeUpstream.requests`; its ``status`` is set when the reply is sent,
so :attr:`FakeUpstream.accepted` (answered 2xx) tells delivered requests from
failed ones. ``record=False`` keeps only the counters of
:meth:`FakeUpstream.statistics`, for benchmarks.

Run as its own process (benchmarks, kill -9 tests)::

    python -m router.testing.upstream --port 0 [--status 200] [--record-to FILE.ndjson]

It prints ``READY http://127.0.0.1:PORT`` once listening, runs until SIGTERM or
SIGINT, then prints a one-line JSON summary. With ``--record-to`` it appends
one JSON line per request (method, path, query, headers, body as text, status,
the action carried out: ``reply``, ``hang``, ``reset`` or ``close``) as soon as
the request has been answered or failed; a request whose reply could not be
sent (the client had gone) or that was still delayed at shutdown has no line.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import errno
import http
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import h11
import orjson
import trio

__all__ = [
    "Action",
    "Close",
    "Delay",
    "FakeUpstream",
    "Hang",
    "Hold",
    "RecordedRequest",
    "Reply",
    "Reset",
    "UpstreamStatistics",
    "count_json_array",
    "main",
]

#: Bytes asked of the socket per read; large enough that a request body of a
#: few MB takes few reads.
RECV_SIZE = 65536
#: Listen backlog; the kernel caps it at ``net.core.somaxconn``.
BACKLOG = 4096
#: Largest request body accepted by default; a larger one gets 413 and a close.
MAX_BODY = 64 * 1024 * 1024
#: ``struct linger`` with ``l_onoff=1, l_linger=0``: close() then sends RST.
_LINGER_RESET = struct.pack("ii", 1, 0)
_END = h11.EndOfMessage()


# --- actions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer with ``status``, ``body`` and ``headers``.

    ``body`` is sent as is when bytes, UTF-8 encoded when str, and JSON-encoded
    (with ``content-type: application/json`` unless given) otherwise.
    ``content-length`` is always set; headers given here win over the defaults.
    """

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
    # The h11 events, built once so sending a reply validates nothing.
    _response: h11.Response = field(init=False, repr=False, compare=False)
    _data: h11.Data | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(f"Reply status must be 200-599, not {self.status}")
        content_type = None
        if isinstance(self.body, bytes | bytearray | memoryview):
            body = bytes(self.body)
        elif isinstance(self.body, str):
            body = self.body.encode()
            content_type = b"text/plain; charset=utf-8"
        else:
            body = orjson.dumps(self.body)
            content_type = b"application/json"
        given = self.headers.items() if isinstance(self.headers, Mapping) else self.headers or ()
        headers = {name.lower().encode(): value.encode() for name, value in given}
        if self.status in (204, 304):
            if body:
                raise ValueError(f"a {self.status} reply has no body")
        else:
            headers.setdefault(b"content-length", str(len(body)).encode())
            if content_type is not None:
                headers.setdefault(b"content-type", content_type)
        try:
            reason = http.HTTPStatus(self.status).phrase.encode()
        except ValueError:
            reason = b""
        response = h11.Response(
            status_code=self.status, headers=list(headers.items()), reason=reason
        )
        object.__setattr__(self, "_response", response)
        object.__setattr__(self, "_data", h11.Data(data=body) if body else None)


@dataclass(frozen=True, slots=True)
class Delay:
    """Wait ``seconds``, then do ``then``."""

    seconds: float
    then: Action = Reply()


@dataclass(frozen=True, slots=True)
class Hold:
    """Wait until ``release`` is set, then do ``then``.

    For tests that need requests in flight at a known moment, without sleeping.
    """

    release: trio.Event
    then: Action = Reply()


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: read and discard until the client closes the connection."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Abort the TCP connection with RST once the request has been read."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (FIN) once the request has been read, without answering."""


Action = Reply | Delay | Hold | Hang | Reset | Close

_ACTION_NAMES: dict[type, str] = {
    Reply: "reply",
    Delay: "delay",
    Hold: "hold",
    Hang: "hang",
    Reset: "reset",
    Close: "close",
}


# --- what was received -------------------------------------------------------


@dataclass(slots=True, eq=False)
class RecordedRequest:
    """One request as received, and what the upstream did with it."""

    method: str
    #: The target's path, without the query string.
    path: str
    #: The raw query string, without ``?`` (``""`` when there is none).
    query: str
    #: Header names in lower case; repeated headers joined with ``", "``.
    headers: dict[str, str]
    body: bytes
    #: ``trio.current_time()`` when the whole request had been read.
    received_at: float
    #: Serial number of the TCP connection it came on (0, 1, …).
    connection: int
    #: The action chosen for it (``None`` only while the handler runs).
    action: Action | None = None
    #: The status answered; ``None`` while pending (Delay, Hold) and for faults.
    status: int | None = None
    #: ``trio.current_time()`` when the reply was written (``None`` if not answered).
    answered_at: float | None = None

    def json(self) -> Any:
        """The body decoded as JSON."""
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    @property
    def accepted(self) -> bool:
        """Whether it was answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class UpstreamStatistics:
    """Counters since the upstream was created (kept with ``record=False`` too)."""

    requests_total: int
    #: Replies sent, by status.
    responses_by_status: dict[int, int]
    #: Requests not answered, by action: ``hang``, ``reset``, ``close``.
    faults: dict[str, int]
    #: Request body bytes received.
    bytes_received: int
    #: Events in requests answered 2xx, when ``count_events`` is set.
    events_accepted: int
    connections_total: int
    connections_open: int
    #: Malformed requests answered 4xx by h11 itself, or bodies over the limit (413).
    protocol_errors: int
    listening: bool


#: Body fields that hold a batch of events in the vendors' APIs.
ENVELOPE_FIELDS = ("messageBody", "data", "events")


def count_json_array(body: bytes) -> int:
    """Events in a body: the length of a JSON array, or of an envelope's event array
    (``messageBody``, ``data``, ``events``); 1 for other JSON, 0 if not JSON."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        for name in ENVELOPE_FIELDS:
            if isinstance(value.get(name), list):
                return len(value[name])
    return 1


# --- the server ----------------------------------------------------------------

#: ``GET`` this path for :meth:`FakeUpstream.statistics` as JSON (never recorded or counted).
STATS_PATH = b"/__stats"


class FakeUpstream:
    """An HTTP/1.1 server on loopback whose replies and faults a test scripts.

    Args:
      host: Address to bind; loopback unless you know why not.
      port: Port to bind; 0 picks a free one, kept by :meth:`accept`.
      default: Action when neither the script nor the handler decides;
        ``Reply(200)`` when ``None``. Settable at any time.
      handler: ``fn(request) -> Action | None``, sync and non-blocking, for
        per-content decisions. Settable at any time. An exception it raises
        propagates and crashes the upstream (and so the test).
      record: Keep every :class:`RecordedRequest` in :attr:`requests`. With
        ``False`` only counters are kept and a request object is built only
        for the handler or ``record_to``.
      count_events: Count events in 2xx-answered bodies into
        ``statistics().events_accepted``: ``True`` for :func:`count_json_array`,
        or a callable ``fn(body) -> int``.
      record_to: A file to which one JSON line per request is appended once it
        has been answered or failed (flushed each line, so another process can
        follow it). The writes are synchronous: fine on a local disk.
      max_body: Larger request bodies are answered 413 and the connection closed.

    Resource handling: every task (the accept loop, one per connection) lives in
    a nursery that :meth:`serve` owns; cancelling :meth:`serve` closes the
    listener and every connection.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Action | None = None,
        handler: Callable[[RecordedRequest], Action | None] | None = None,
        record: bool = True,
        count_events: bool | Callable[[bytes], int] = False,
        record_to: str | os.PathLike[str] | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.host = host
        self.port = port
        self.default: Action = default if default is not None else Reply()
        self.handler = handler
        self.record = record
        self.max_body = max_body
        self._count_events: Callable[[bytes], int] | None = (
            count_json_array if count_events is True else count_events or None
        )
        self._record_to = record_to
        self._record_file: IO[bytes] | None = None
        #: Every request received, in arrival order (when ``record`` is true).
        self.requests: list[RecordedRequest] = []
        self.requests_total = 0
        #: Replies sent, by status.
        self.responses_by_status: collections.Counter[int] = collections.Counter()
        self._faults: collections.Counter[str] = collections.Counter()
        self._bytes_received = 0
        self._events_accepted = 0
        self._connections_total = 0
        self._protocol_errors = 0
        self._script: collections.deque[Action] = collections.deque()
        self._changed: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._listener: trio.SocketListener | None = None
        self._generation: trio.CancelScope | None = None
        self._streams: set[trio.SocketStream] = set()

    @property
    def url(self) -> str:
        """``http://host:port``, known once :meth:`serve` has started."""
        if self.port == 0:
            raise RuntimeError("the upstream is not serving yet")
        return f"http://{self.host}:{self.port}"

    @property
    def accepted(self) -> list[RecordedRequest]:
        """Recorded requests answered with a 2xx status (delivered)."""
        return [request for request in self.requests if request.accepted]

    @property
    def listening(self) -> bool:
        """Whether new connections are accepted (false after :meth:`refuse`)."""
        return self._listener is not None

    # --- scripting ---

    def script(self, *actions: Action) -> None:
        """Queue actions for the next requests, one each, after any queued before."""
        for action in actions:
            if not isinstance(action, Action):
                raise TypeError(f"not an action: {action!r}")
        self._script.extend(actions)

    @property
    def script_remaining(self) -> int:
        """Scripted actions not used yet."""
        return len(self._script)

    def clear_script(self) -> None:
        """Drop the scripted actions not used yet."""
        self._script.clear()

    # --- observing ---

    def statistics(self) -> UpstreamStatistics:
        """The counters, as a snapshot."""
        return UpstreamStatistics(
            requests_total=self.requests_total,
            responses_by_status=dict(self.responses_by_status),
            faults=dict(self._faults),
            bytes_received=self._bytes_received,
            events_accepted=self._events_accepted,
            connections_total=self._connections_total,
            connections_open=len(self._streams),
            protocol_errors=self._protocol_errors,
            listening=self.listening,
        )

    async def wait_for(self, condition: int | Callable[[FakeUpstream], bool]) -> None:
        """Wait until ``condition`` holds; checked whenever a request arrives or is answered.

        ``condition`` is a number of requests received (``requests_total``,
        so it works with ``record=False``), or ``fn(upstream) -> bool``, e.g.
        ``lambda up: len(up.accepted) >= 3``. Takes no timeout: wrap it in
        :func:`trio.fail_after`.
        """
        if isinstance(condition, int):
            count = condition
            holds: Callable[[FakeUpstream], bool] = lambda up: up.requests_total >= count  # noqa: E731
        else:
            holds = condition
        while not holds(self):
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()
        await trio.lowlevel.checkpoint()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # --- running ---

    @classmethod
    @asynccontextmanager
    async def running(cls, **options: Any) -> AsyncIterator[FakeUpstream]:
        """Serve for the duration of an ``async with``; ``options`` go to the constructor.

        An exception raised in the body comes out as is, not in an ExceptionGroup.
        """
        upstream = cls(**options)
        body_error: Exception | None = None
        async with trio.open_nursery() as nursery:
            await nursery.start(upstream.serve)
            try:
                yield upstream
            except Exception as exc:
                body_error = exc
            finally:
                nursery.cancel_scope.cancel()
        if body_error is not None:
            raise body_error

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; reports :attr:`url` to ``nursery.start``.

        Resource handling: on cancellation the listener, every connection and
        the ``record_to`` file are closed.

        Error handling: a connection broken by the client ends that connection
        only; any other exception (a bug, or the handler's) propagates.
        """
        if self._nursery is not None:
            raise RuntimeError("this upstream is already serving")
        try:
            if self._record_to is not None:
                self._record_file = await trio.to_thread.run_sync(open, self._record_to, "ab")
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.accept()
                task_status.started(self.url)
                await trio.sleep_forever()
        finally:
            self.refuse()
            self._nursery = None
            if self._record_file is not None:
                self._record_file.close()
                self._record_file = None

    def refuse(self) -> None:
        """Stop listening, so connects fail with ECONNREFUSED, and close every open connection.

        Open connections are closed too (FIN; a request in progress gets no
        answer), as when an upstream goes down: otherwise a client's pooled
        keep-alive connections would go on working. :meth:`accept` listens again.
        """
        if self._generation is not None:
            self._generation.cancel()
            self._generation = None
        if self._listener is not None:
            self._listener.socket.close()
            self._listener = None
        for stream in self._streams:
            stream.socket.close()
        self._streams.clear()

    async def accept(self) -> None:
        """Listen (again) on the same port; does nothing if already listening.

        Raises:
          OSError: if the port cannot be bound, e.g. another process took it.
        """
        if self._nursery is None:
            raise RuntimeError("accept() needs serve() running")
        if self._listener is not None:
            await trio.lowlevel.checkpoint()
            return
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            await sock.bind((self.host, self.port))
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._listener = trio.SocketListener(sock)
        await self._nursery.start(self._accept_loop, self._listener)

    async def _accept_loop(
        self, listener: trio.SocketListener, *, task_status: trio.TaskStatus[None]
    ) -> None:
        async with trio.open_nursery() as connections:
            self._generation = connections.cancel_scope
            task_status.started()
            while True:
                try:
                    stream = await listener.accept()
                except trio.ClosedResourceError:
                    return  # refuse() closed it
                except OSError as exc:
                    if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        # Out of descriptors: wait for a connection to end, as
                        # trio.serve_listeners does, rather than crash the test.
                        await trio.sleep(0.01)
                        continue
                    raise
                self._streams.add(stream)
                self._connections_total += 1
                connections.start_soon(self._connection, stream, self._connections_total - 1)

    async def _connection(self, stream: trio.SocketStream, number: int) -> None:
        try:
            await self._converse(stream, number)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client reset the connection, or refuse() closed it
        finally:
            self._streams.discard(stream)
            stream.socket.close()

    async def _converse(self, stream: trio.SocketStream, number: int) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = await _next_event(conn, stream)
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                if conn.they_are_waiting_for_100_continue:
                    await stream.send_all(
                        conn.send(h11.InformationalResponse(status_code=100, headers=[]))
                    )
                chunks: list[bytes] = []
                size = 0
                while True:
                    part = await _next_event(conn, stream)
                    if isinstance(part, h11.Data):
                        chunks.append(part.data)
                        size += len(part.data)
                        if size > self.max_body:
                            self._protocol_errors += 1
                            await self._send(stream, conn, Reply(413), b"")
                            return
                    else:
                        assert isinstance(part, h11.EndOfMessage)
                        break
                body = b"".join(chunks)  # bytes, even from one bytearray
                if not await self._respond(stream, conn, event, body, number):
                    return
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            self._protocol_errors += 1
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(stream, conn, Reply(exc.error_status_hint), b"")

    async def _respond(
        self,
        stream: trio.SocketStream,
        conn: h11.Connection,
        event: h11.Request,
        body: bytes,
        number: int,
    ) -> bool:
        """Decide, record and carry out the action; return whether to keep the connection."""
        if event.target == STATS_PATH:
            # The counters, for a benchmark or test in another process; not counted itself.
            stats = dataclasses.asdict(self.statistics())
            body = orjson.dumps(stats, option=orjson.OPT_NON_STR_KEYS)
            await self._send(stream, conn, Reply(200, body), event.method)
            return True
        self.requests_total += 1
        self._bytes_received += len(body)
        request = None
        if self.record or self.handler is not None or self._record_file is not None:
            request = _recorded(event, body, number)
        action: Action | None = self._script.popleft() if self._script else None
        if action is None and self.handler is not None:
            assert request is not None
            action = self.handler(request)
        if action is None:
            action = self.default
        if request is not None:
            request.action = action
            if self.record:
                self.requests.append(request)
        self._notify()

        while True:
            if isinstance(action, Reply):
                await self._send(stream, conn, action, event.method)
                self.responses_by_status[action.status] += 1
                if self._count_events is not None and 200 <= action.status < 300:
                    self._events_accepted += self._count_events(body)
                self._done(request, action, action.status)
                return True
            if isinstance(action, Delay):
                await trio.sleep(action.seconds)
            elif isinstance(action, Hold):
                await action.release.wait()
            elif isinstance(action, Hang):
                self._fault(request, action)
                while await stream.receive_some(RECV_SIZE):
                    pass
                return False
            elif isinstance(action, Reset):
                self._fault(request, action)
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                return False
            elif isinstance(action, Close):
                self._fault(request, action)
                return False
            else:
                raise TypeError(f"not an action: {action!r}")
            action = action.then

    async def _send(
        self, stream: trio.SocketStream, conn: h11.Connection, reply: Reply, method: bytes
    ) -> None:
        data = conn.send(reply._response)
        if reply._data is not None and method != b"HEAD":
            data += conn.send(reply._data)
        data += conn.send(_END)
        await stream.send_all(data)

    def _fault(self, request: RecordedRequest | None, action: Action) -> None:
        self._faults[_ACTION_NAMES[type(action)]] += 1
        self._done(request, action, None)

    def _done(self, request: RecordedRequest | None, action: Action, status: int | None) -> None:
        if request is not None:
            request.status = status
            request.answered_at = trio.current_time()
            if self._record_file is not None:
                self._record_file.write(_ndjson_line(request, action))
                self._record_file.flush()
        self._notify()


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(RECV_SIZE))
            continue
        return event


def _recorded(event: h11.Request, body: bytes, number: int) -> RecordedRequest:
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    path, _, query = event.target.decode("latin-1").partition("?")
    return RecordedRequest(
        method=event.method.decode("ascii"),
        path=path,
        query=query,
        headers=headers,
        body=body,
        received_at=trio.current_time(),
        connection=number,
    )


def _ndjson_line(request: RecordedRequest, action: Action) -> bytes:
    return (
        orjson.dumps(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "body": request.text,
                "status": request.status,
                "action": _ACTION_NAMES[type(action)],
                "connection": request.connection,
                "time": time.time(),
            }
        )
        + b"\n"
    )


# --- command line ----------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m router.testing.upstream",
        description="A fake upstream HTTP API on loopback, for benchmarks and crash tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--status", type=int, default=200, help="status of every reply")
    parser.add_argument("--body", default="", help="body of every reply (default empty)")
    parser.add_argument(
        "--record-to", metavar="FILE", help="append one JSON line per request to FILE"
    )
    parser.add_argument(
        "--count-events",
        action="store_true",
        help="count JSON array elements in 2xx-answered bodies into the summary's 'events'",
    )
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    upstream = FakeUpstream(
        host=args.host,
        port=args.port,
        default=Reply(args.status, args.body.encode()),
        record=False,
        count_events=args.count_events,
        record_to=args.record_to,
    )
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(upstream.serve)
            print(f"READY {url}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    stats = upstream.statistics()
    return {
        "requests": stats.requests_total,
        "statuses": {str(status): n for status, n in sorted(stats.responses_by_status.items())},
        "faults": stats.faults,
        "bytes": stats.bytes_received,
        "events": stats.events_accepted,
        "connections": stats.connections_total,
        "protocol_errors": stats.protocol_errors,
    }


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; print ``READY <url>``, then a JSON summary on exit."""
    args = _parse_args(argv)
    summary = trio.run(_run, args)
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
