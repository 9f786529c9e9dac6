"""A ``server.workers > 1`` group seen from outside as one router: admin requests for all workers.

The supervisor binds ``admin.bind`` once and hands the socket to every
worker, so the kernel spreads admin connections as it spreads ingest ones.
Each worker also serves the admin app on a private unix socket
(:func:`private_socket_paths`). A request on the shared socket is answered
for the whole group by asking every worker's private socket, its own
included (:class:`WorkerGroup`); a request on a private socket is answered
by that worker alone, so nothing recurses.

=======================  =================================================
``POST /admin/reload``   every worker reloads; the worst result, and each
``GET /admin/reloads``   each worker's history, by worker index
``GET /admin/status``    :func:`router.status.merge` of the workers' own
``GET /metrics``         every worker's samples added up (also on the
                         ingest port: :class:`GroupMetrics`)
:data:`STREAMED_PATHS`   every worker's NDJSON lines, as they come
=======================  =================================================

Anything else (``GET /admin/config``: they all read the same file) is
answered by the worker that took the connection. A worker that does not
answer in time is named in the answer instead of failing it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio
from prometheus_client.utils import floatToGoString
from quart import Response
from quart.wrappers.response import ResponseBody

from router.adminreply import error_response, json_response
from router.status import merge

__all__ = [
    "STREAMED_PATHS",
    "GroupMetrics",
    "GroupSockets",
    "WorkerGroup",
    "merge_metrics",
    "merged_lines",
    "private_socket_paths",
]

log = structlog.get_logger()

#: Seconds a worker has to answer a scrape or a status request.
SCRAPE_TIMEOUT = 2.0
#: Seconds a worker has to finish a reload (sinks may open connections).
RELOAD_TIMEOUT = 60.0
#: Streaming GETs (NDJSON, one object a line) merged from every worker.
STREAMED_PATHS = frozenset({"/admin/tap"})
#: The longest unix socket path the kernel takes, in bytes (``sun_path`` less its NUL).
UNIX_PATH_MAX = 107
#: Gauges whose group value is the highest worker's, not the sum.
_MAX_GAUGES = frozenset({"router_sink_paused_seconds"})
#: A ``buffer: redis`` sink's queue gauges: every worker reports the one shared stream.
_SHARED_QUEUE_GAUGES = frozenset({"router_sink_events_queued", "router_sink_spool_bytes"})
_SHARED_QUEUE_FIELDS = ("pending", "pending_bytes")
#: The internal requests are plain HTTP on a unix socket; httpx wants a TLS context anyway,
#: and building its default one reads the CA bundle (a blocking 0.2 s or more) every time.
_UNUSED_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
#: Reload results, worst first.
_RELOAD_ORDER = ("rejected", "unreachable", "applied", "unchanged")


@dataclass(frozen=True)
class GroupSockets:
    """What the supervisor gives worker ``index`` (picklable: the sockets are sent over)."""

    index: int
    #: Every worker's private admin socket, by index.
    paths: tuple[str, ...]
    #: This worker's private socket, bound and listening (hypercorn ``Sockets``).
    private: Any
    #: The group's ``admin.bind`` socket, the same for every worker (None: ``admin.bind: off``).
    admin: Any | None


def private_socket_paths(data_dir: Path, workers: int) -> tuple[list[Path], Path | None]:
    """Each worker's private admin socket, and a directory made for them (or None).

    ``<data_dir>/worker-<i>/admin.sock`` if that fits a unix socket path;
    otherwise ``<tmp>/router-admin-*/<i>.sock`` in a new private directory,
    which the caller removes when the group stops.
    """
    paths = [data_dir / f"worker-{i}" / "admin.sock" for i in range(workers)]
    if all(len(os.fsencode(p)) <= UNIX_PATH_MAX for p in paths):
        return paths, None
    made = Path(tempfile.mkdtemp(prefix="router-admin-"))
    return [made / f"{i}.sock" for i in range(workers)], made


class _Failure(str):
    """Why a worker gave no usable answer (a str, so it goes into JSON as it is)."""


def _worst(results: Sequence[str]) -> str:
    return min(results, key=lambda r: _RELOAD_ORDER.index(r) if r in _RELOAD_ORDER else 0)


class WorkerGroup:
    """Every worker's private admin socket, asked at once, and their answers made one.

    ``token`` gives this worker's current ``admin.token``: the internal
    requests carry it, since the private sockets check it too.
    ``shared_sinks`` gives the sinks whose queue every worker shares
    (``buffer: redis``): their queue length is not added up.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        token: Callable[[], str | None],
        *,
        scrape_timeout: float = SCRAPE_TIMEOUT,
        reload_timeout: float = RELOAD_TIMEOUT,
        shared_sinks: Callable[[], frozenset[str]] = frozenset,
    ):
        self.paths = [str(p) for p in paths]
        self.token = token
        self.shared_sinks = shared_sinks
        self.scrape_timeout = scrape_timeout
        self.reload_timeout = reload_timeout

    def _client(self, path: str, timeout: float) -> httpx.AsyncClient:
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=path, verify=_UNUSED_TLS),
            base_url="http://worker",
            headers=headers,
            timeout=timeout,
        )

    async def ask(
        self, method: str, url: str, *, within: float | None = None
    ) -> list[httpx.Response | _Failure]:
        """Every worker's answer to ``method url`` by index, each within ``within`` seconds.

        A worker that gives none has a :class:`_Failure` saying why.
        """
        timeout = self.scrape_timeout if within is None else within
        answers: list[httpx.Response | _Failure] = [_Failure("no answer")] * len(self.paths)

        async def one(index: int, path: str) -> None:
            with trio.move_on_after(timeout) as scope:
                try:
                    async with self._client(path, timeout) as client:
                        answers[index] = await client.request(method, url)
                except httpx.HTTPError as exc:
                    answers[index] = _Failure(f"{type(exc).__name__}: {exc}".rstrip(": "))
            if scope.cancelled_caught:
                answers[index] = _Failure(f"did not answer within {timeout:g}s")
            if isinstance(answers[index], _Failure):
                log.warning("workers.no_answer", peer=index, url=url, error=str(answers[index]))

        async with trio.open_nursery() as nursery:
            for index, path in enumerate(self.paths):
                nursery.start_soon(one, index, path)
        return answers

    async def answer(self, method: str, path: str, query: bytes = b"") -> Response | None:
        """The group's answer to a request on the shared socket, or None: answer it locally."""
        if method == "GET" and path in STREAMED_PATHS:
            return await self.stream(path, query)
        if method == "GET" and path == "/metrics":
            return Response(await self.metrics(), content_type="text/plain; version=0.0.4")
        if method == "GET" and path == "/admin/status":
            return await self.status()
        if method == "GET" and path == "/admin/reloads":
            return await self.reloads()
        if method == "POST" and path == "/admin/reload":
            return await self.reload()
        return None

    async def metrics(self) -> bytes:
        """The Prometheus text of every worker, added up (:func:`merge_metrics`)."""
        answers = await self.ask("GET", "/metrics")
        texts = [a.text if _ok(a) else None for a in answers]
        return merge_metrics(texts, self.shared_sinks())

    async def status(self) -> Response:
        merged, missing = await self._snapshot()
        if merged is None:
            return _unavailable(missing)
        return json_response(merged)

    async def snapshot(self) -> dict[str, Any] | None:
        """Every worker's status snapshot as one (:func:`router.status.merge`).

        Workers that did not answer are named under ``unreachable``; None if none answered.
        """
        return (await self._snapshot())[0]

    async def _snapshot(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        answers = await self.ask("GET", "/admin/status")
        snapshots = [a.json() for a in answers if _ok(a)]
        missing = {str(i): _why(a) for i, a in enumerate(answers) if not _ok(a)}
        if not snapshots:
            return None, missing
        merged = merge(snapshots)
        for name in self.shared_sinks() & set(merged["sinks"]):
            for field in _SHARED_QUEUE_FIELDS:
                counts = [s["sinks"][name].get(field) or 0 for s in snapshots if name in s["sinks"]]
                merged["sinks"][name][field] = max(counts)
        if missing:
            merged["unreachable"] = missing
        return merged, missing

    async def reloads(self) -> Response:
        answers = await self.ask("GET", "/admin/reloads")
        by_worker = {str(i): a.json() if _ok(a) else _why(a) for i, a in enumerate(answers)}
        return json_response({"workers": by_worker})

    async def reload(self) -> Response:
        """Every worker reloads; 422 if one rejected the config, 502 if one did not answer."""
        answers = await self.ask("POST", "/admin/reload", within=self.reload_timeout)
        results: dict[str, Any] = {}
        for i, a in enumerate(answers):
            if isinstance(a, httpx.Response) and a.status_code in (200, 422):
                results[str(i)] = a.json()
            else:
                results[str(i)] = {"result": "unreachable", "problems": [_why(a)]}
        worst = _worst([r["result"] for r in results.values()])
        status = {"rejected": 422, "unreachable": 502}.get(worst, 200)
        return json_response({"result": worst, "workers": results}, status)

    async def stream(self, path: str, query: bytes = b"") -> Response:
        """Every worker's NDJSON stream at ``path`` as one; a worker's refusal as it is.

        A worker that does not start its stream within the scrape timeout is
        left out (and logged); the others' lines still flow.
        """
        url = path + (f"?{query.decode('latin-1')}" if query else "")
        stack = AsyncExitStack()
        streams: list[httpx.Response] = []
        missing: dict[str, str] = {}
        try:
            for index, socket_path in enumerate(self.paths):
                client = await stack.enter_async_context(
                    self._client(socket_path, self.scrape_timeout)
                )
                # Once started, a stream waits between lines as long as it likes.
                request = client.build_request(
                    "GET", url, timeout=httpx.Timeout(self.scrape_timeout, read=None)
                )
                response = None
                with trio.move_on_after(self.scrape_timeout):
                    try:
                        response = await client.send(request, stream=True)
                    except httpx.HTTPError as exc:
                        missing[str(index)] = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if response is None:
                    missing.setdefault(str(index), "did not answer in time")
                    log.warning(
                        "workers.no_answer", peer=index, url=path, error=missing[str(index)]
                    )
                    continue
                stack.push_async_callback(response.aclose)
                if response.status_code != 200:
                    await response.aread()
                    refused = Response(
                        response.content,
                        status=response.status_code,
                        content_type=response.headers.get("content-type"),
                    )
                    await stack.aclose()
                    return refused
                streams.append(response)
        except BaseException:
            await stack.aclose()
            raise
        if not streams:
            await stack.aclose()
            return _unavailable(missing)
        content_type = streams[0].headers.get("content-type", "application/x-ndjson")
        result = Response(_MergedBody(streams, stack), content_type=content_type)
        result.timeout = None  # a stream lasts until the client goes
        return result


class _MergedBody(ResponseBody):
    """Quart iterates this inside ``async with``: the readers' nursery lives exactly that long."""

    def __init__(self, streams: Sequence[httpx.Response], stack: AsyncExitStack):
        self.streams = list(streams)
        self.stack = stack
        self._manager: Any = None
        self._nursery: trio.Nursery | None = None
        self._lines: trio.MemoryReceiveChannel[bytes] | None = None

    async def __aenter__(self) -> _MergedBody:
        self._manager = trio.open_nursery()
        self._nursery = await self._manager.__aenter__()
        sources = [response.aiter_lines() for response in self.streams]
        self._lines = await self._nursery.start(merged_lines, sources)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._nursery is not None and self._lines is not None
        # Nothing here may checkpoint before the nursery is exited (it is cancelled).
        self._nursery.cancel_scope.cancel()  # the client went, or every stream ended
        self._lines.close()
        try:
            await self._manager.__aexit__(exc_type, exc, tb)
        finally:
            await self.stack.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._lines is not None
        return self._lines.__aiter__()


async def _forward_lines(lines: AsyncIterator[str], send: trio.MemorySendChannel[bytes]) -> None:
    """Each non-empty line of one stream, whole and newline-ended, until either end closes."""
    async with send:
        try:
            async for line in lines:
                if line.strip():
                    await send.send(line.encode() + b"\n")
        except (httpx.HTTPError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def merged_lines(
    sources: Sequence[AsyncIterator[str]],
    *,
    task_status: trio.TaskStatus[trio.MemoryReceiveChannel[bytes]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Merge ``sources`` into one channel of whole lines (``nursery.start`` returns it).

    Lines of different sources interleave in the order they arrive; a line
    is never split. The channel ends once every source has.
    """
    send, receive = trio.open_memory_channel[bytes](0)
    task_status.started(receive)
    async with send, trio.open_nursery() as nursery:
        for source in sources:
            nursery.start_soon(_forward_lines, source, send.clone())


def _ok(answer: httpx.Response | _Failure) -> bool:
    return isinstance(answer, httpx.Response) and answer.status_code == 200


def _why(answer: httpx.Response | _Failure) -> str:
    if isinstance(answer, httpx.Response):
        return f"answered {answer.status_code}"
    return str(answer)


def _unavailable(missing: dict[str, str]) -> Response:
    detail = "; ".join(f"worker {i}: {why}" for i, why in missing.items()) or "no worker answered"
    return error_response(503, "Service Unavailable", detail)


def merge_metrics(texts: Sequence[str | None], shared_sinks: frozenset[str] = frozenset()) -> bytes:
    """Several workers' Prometheus text as one: samples with equal name and labels added up.

    ``texts[i]`` is worker ``i``'s, or None if it did not answer. A
    paused-for gauge is the highest;
    ``router_worker_info`` keeps one sample per worker (its ``worker`` label
    differs). The queue gauges of ``shared_sinks`` (``buffer: redis``: one
    stream, which every worker reports) are the highest worker's, not a
    sum. Two gauges say who answered: ``router_workers_up`` (how many) and
    ``router_worker_scrape_failed{worker}`` (1 for each that did not).

    The texts are ``prometheus_client``'s own (every worker runs the same
    code, so a sample's name and labels are written alike everywhere), and
    are merged line by line: the full parser and a re-render took about ten
    times as long, and the worker's event loop waits for it.
    """
    families: dict[str, _Family] = {}
    for text in texts:
        if text is None:
            continue
        family: _Family | None = None
        for line in text.splitlines():
            if line.startswith("# "):
                name = line.split(" ", 3)[2]
                family = families.get(name)
                if family is None:
                    family = families[name] = _Family()
                if line.startswith("# TYPE "):
                    family.pick = _pick(name, line.rsplit(" ", 1)[1], shared_sinks)
                if line not in family.comments:
                    family.comments.append(line)
            elif line and family is not None:
                key, _, raw = line.rpartition(" ")
                value = float(raw)
                samples = family.samples
                samples[key] = family.pick(key, samples[key], value) if key in samples else value
    lines = []
    for family in families.values():
        lines += family.comments
        lines += [f"{key} {floatToGoString(value)}" for key, value in family.samples.items()]
    lines.append("# HELP router_workers_up Workers that answered this scrape")
    lines.append("# TYPE router_workers_up gauge")
    lines.append(f"router_workers_up {floatToGoString(sum(t is not None for t in texts))}")
    lines.append("# HELP router_worker_scrape_failed 1 if the worker did not answer this scrape")
    lines.append("# TYPE router_worker_scrape_failed gauge")
    for index, text in enumerate(texts):
        failed = floatToGoString(text is None)
        lines.append(f'router_worker_scrape_failed{{worker="{index}"}} {failed}')
    return ("\n".join(lines) + "\n").encode()


Pick = Callable[[str, float, float], float]


class _Family:
    """One metric family's comment lines and samples (by ``name{labels}``), in first-seen order."""

    __slots__ = ("comments", "pick", "samples")

    def __init__(self) -> None:
        self.comments: list[str] = []
        self.samples: dict[str, float] = {}
        self.pick: Pick = _sum


def _sum(key: str, a: float, b: float) -> float:
    return a + b


def _pick(name: str, kind: str, shared_sinks: frozenset[str]) -> Pick:
    """How two workers' values of a sample of family ``name`` (of type ``kind``) make one."""
    if kind == "gauge" and name in _MAX_GAUGES:
        return lambda key, a, b: max(a, b)
    if kind == "gauge" and name in _SHARED_QUEUE_GAUGES and shared_sinks:
        labels = tuple(f'sink="{_escape(sink)}"' for sink in shared_sinks)

        def queue(key: str, a: float, b: float) -> float:
            return max(a, b) if any(label in key for label in labels) else a + b

        return queue
    return _sum


def _escape(value: str) -> str:
    """A label value as the exposition format writes it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class GroupMetrics:
    """ASGI: the ingest app, but ``GET /metrics`` is the group's (:meth:`WorkerGroup.metrics`).

    Operators scrape the ingest port; one scrape must not show one worker's numbers.
    """

    def __init__(self, app: Any, group: WorkerGroup):
        self.app = app
        self.group = group

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/metrics" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        body = await self.group.metrics()
        headers = [
            (b"content-type", b"text/plain; version=0.0.4"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
