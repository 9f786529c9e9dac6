"""The daemon: storage, delivery and HTTP, each in a nursery nested in the previous one.

::

    storage nursery      spool writer and Redis link (outlive everything that uses them)
    └── delivery nursery one SinkRunner per sink
        └── http nursery hypercorn, signal and shutdown watchers

Shutdown (SIGTERM, SIGINT or ``shutdown_trigger``): hypercorn stops
accepting and lets in-flight requests finish; then every runner stops taking
batches and finishes in-flight sends, all within ``server.shutdown_timeout``
of the signal; then the spool commits what is pending (acks, and the
leftovers of memory buffers) and closes, and ``buffer: redis`` queues give
back what they read but did not send. A second signal skips the waiting.
Pending events stay in the spool (or the Redis stream) and resume on the
next start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import hypercorn.config
import structlog
import trio
from hypercorn.utils import wrap_app

from router.app import create_asgi
from router.config import InboundLimit, RouterConfig, SinkConfig
from router.delivery import SinkRunner
from router.errors import DataDirLocked, PluginError, RouterError, StorageUnusable
from router.http import serve_http
from router.ingest import SourceRuntime
from router.log import Redactor
from router.metrics import Metrics
from router.quarantine import Quarantine
from router.queue import SinkQueue
from router.ratelimit import GCRA, Decision
from router.registry import Registry, call_each, call_each_collecting
from router.routing import Route, SinkTarget
from router.sink import Sink
from router.spool import PROBE_INTERVAL, Spool
from router.storage import describe, make_data_dir

__all__ = ["Daemon", "LocalLimiter", "lock_data_dir", "serve"]

log = structlog.get_logger()


class LocalLimiter:
    """An inbound limit kept in this process."""

    def __init__(self, rate: float, burst: int):
        self.gcra = GCRA(rate, burst)

    async def check(self, key: str, cost: int) -> Decision:
        return self.gcra.take(key, cost)


@contextmanager
def lock_data_dir(path: Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``path/LOCK`` so two daemons never share a data dir.

    :raises StorageUnusable: the directory cannot be created or written.
    """
    make_data_dir(path)
    lock_path = path / "LOCK"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StorageUnusable(lock_path, describe(lock_path, exc, what="lock")) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DataDirLocked(
                f"data directory {path} is in use by another router (pid {holder}); "
                "give each daemon its own --data-dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            raise StorageUnusable(lock_path, describe(lock_path, exc, what="lock")) from exc
        yield path
    finally:
        os.close(fd)


class Daemon:
    """Everything one running router owns. Built from a validated config and registry."""

    def __init__(
        self,
        config: RouterConfig,
        registry: Registry,
        *,
        data_dir: Path | None = None,
        worker: int | None = None,
        drain: Sequence[Path] = (),
    ):
        self.config = config
        self.registry = registry
        self.data_dir = Path(data_dir or config.server.data_dir)
        self.worker = worker
        #: Spool directories of former workers: delivered from, never written to.
        self.drain = list(drain)
        self.drain_spools: list[Spool] = []
        self.drain_runners: list[SinkRunner] = []
        self.metrics = Metrics()
        if worker is not None:
            self.metrics.worker_info(worker)
        self.quarantine: Quarantine | None = None
        self.spool = Spool(self.data_dir / "spool.db")
        #: Every sink's queue: a SqliteQueue of the spool, or a RedisQueue (``buffer: redis``).
        self.queues: dict[str, SinkQueue] = {}
        #: The shared Redis, if a sink or a limit uses it (``router.redisconn.RedisLink``).
        self.redis: Any = None
        self.sinks: dict[str, Sink] = {}
        self.runners: dict[str, SinkRunner] = {}
        self.sources: dict[str, SourceRuntime] = {}
        self.clients: list[httpx.AsyncClient] = []
        self.asgi: Any = None
        self.ready = False
        self.stopping = trio.Event()
        self._stopped_at = 0.0
        #: /readyz is unauthenticated, and a sink's last error may quote its key.
        self._redactor = Redactor(config.secrets)

    # -- building ----------------------------------------------------------------

    async def open(self) -> None:
        """Open storage and build every sink, runner and source (no network I/O)."""
        self.quarantine = Quarantine(self.data_dir / "quarantine.db", probe=True)
        for name, sink_config in self.config.sinks.items():
            self.sinks[name] = self._make_sink(sink_config)
        await self.spool.open(
            [
                (
                    name,
                    {
                        "durable": cfg.buffer != "memory",
                        "max_events": cfg.spool.max_events,
                        "max_bytes": cfg.spool.max_bytes,
                        "memory_bytes": cfg.spool.memory_bytes,
                        "dedup_window": cfg.dedup_window,
                    },
                )
                for name, cfg in self.config.sinks.items()
                if cfg.buffer != "redis"
            ]
        )
        self.queues = {**self.spool.queues, **self._redis_queues()}
        targets = {}
        for name, sink_config in self.config.sinks.items():
            queue = self.queues[name]
            self.metrics.sink_recovered.labels(name).inc(queue.recovered)
            queue.on_replayed = self.metrics.sink_replayed.labels(name).inc
            # Every sink has the series (at 0 unless Redis stored a write whose reply was lost).
            self.metrics.sink_stored_unacknowledged.labels(name)
            runner = SinkRunner(
                sink_config,
                self.sinks[name],
                queue,
                self.metrics,
                limiter=self._outbound_limiter(sink_config),
            )
            self.runners[name] = runner
            self.metrics.watch_sink(name, runner.statistics)
            targets[name] = SinkTarget(
                name,
                self.sinks[name],
                queue,
                self.registry.validators,
                when_full=sink_config.spool.when_full,
            )
        for name, source_config in self.config.sources.items():
            cls = self.registry.sources[source_config.plugin]
            source = cls(name, source_config.options, quarantine=self.quarantine)
            routes = [
                Route(route, [targets[s] for s in route.sinks])
                for route in self.config.routes
                if name in route.sources
            ]
            if not routes:
                log.warning(
                    "source.unrouted",
                    source=name,
                    message="no route uses this source: its events are accepted and "
                    "counted in router_events_unrouted_total, nothing else",
                )
            limiter = self._inbound_limiter(name, source_config.rate_limit)
            self.sources[name] = SourceRuntime(
                source_config,
                source,
                self.registry.codecs[cls.vendor],
                self.registry.validators,
                routes,
                self.quarantine,
                self.metrics,
                limiter,
                max_json_depth=self.config.server.max_json_depth,
            )
        for path in self.drain:
            await self._open_drain(path)

    async def _open_drain(self, path: Path) -> None:
        """Deliver what a former worker left in ``path``; nothing new is written there."""
        spool = Spool(path / "spool.db")
        await spool.open(
            [(name, {"durable": cfg.buffer != "memory"}) for name, cfg in self.config.sinks.items()]
        )
        self.drain_spools.append(spool)
        for name, sink_config in self.config.sinks.items():
            queue = spool.queues[name]
            if not queue.pending_events:
                continue
            self.metrics.sink_recovered.labels(name).inc(queue.recovered)
            self.drain_runners.append(
                SinkRunner(sink_config, self._make_sink(sink_config), queue, self.metrics)
            )
            log.info("daemon.draining", sink=name, path=str(path), pending=queue.pending_events)

    def _redis_link(self) -> Any:
        """The daemon's RedisLink, made on first use (coredis is imported only then)."""
        if self.redis is None:
            from router.redisconn import RedisLink, default_consumer

            redis = self.config.redis  # `router check` guarantees it for Redis users
            self.redis = RedisLink(
                redis,
                # Each worker has its own data dir, so default names differ; a
                # configured name gets the worker's index for the same reason.
                consumer=(
                    f"{redis.consumer}-w{self.worker}"
                    if redis.consumer and self.worker is not None
                    else redis.consumer
                )
                or default_consumer(self.data_dir),
                metrics=self.metrics,
            )
        return self.redis

    def _redis_queues(self) -> dict[str, SinkQueue]:
        queues = {}
        for name, cfg in self.config.sinks.items():
            if cfg.buffer == "redis":
                from router.redisqueue import RedisQueue

                queues[name] = RedisQueue(
                    self._redis_link(),
                    name,
                    max_events=cfg.spool.max_events,
                    max_bytes=cfg.spool.max_bytes,
                    dedup_window=cfg.dedup_window,
                    on_stored_unacknowledged=(
                        self.metrics.sink_stored_unacknowledged.labels(name).inc
                    ),
                )
        return queues

    def _inbound_limiter(self, source: str, limit: InboundLimit | None) -> Any:
        if limit is None:
            return None
        if limit.backend != "redis":
            return LocalLimiter(limit.rate, limit.burst)
        from router.redislimit import RedisLimiter

        return RedisLimiter(
            self._redis_link(),
            source,
            limit.rate,
            limit.burst,
            on_backend_error=limit.on_backend_error,
            metrics=self.metrics,
        )

    def _outbound_limiter(self, config: SinkConfig) -> Any:
        """A Redis limit for ``backend: redis``; None lets the runner keep a local one."""
        limit = config.rate_limit
        if limit is None or limit.backend != "redis":
            return None
        from router.redislimit import RedisOutboundLimiter

        return RedisOutboundLimiter(
            self._redis_link(),
            config.name,
            limit.requests_per_second,
            limit.events_per_second,
            on_backend_error=limit.on_backend_error,
            metrics=self.metrics,
        )

    def _make_sink(self, config: SinkConfig) -> Sink:
        cls = self.registry.sinks[config.plugin]
        client = httpx.AsyncClient(
            timeout=config.timeout,
            limits=httpx.Limits(
                max_connections=config.max_concurrency,
                max_keepalive_connections=config.max_concurrency,
            ),
        )
        self.clients.append(client)
        codec = self.registry.codecs.get(cls.vendor) if cls.vendor else None
        try:
            sink = cls(config.name, config.options, client=client, codec=codec)
        except Exception as exc:
            raise PluginError(
                config.plugin, f"{cls.__name__}()", f"{type(exc).__name__}: {exc}"
            ) from exc
        sink.data_dir = self.data_dir
        return sink

    async def close(self) -> None:
        with trio.CancelScope(shield=True):
            for client in self.clients:
                await client.aclose()
        self.spool.close_db()
        for spool in self.drain_spools:
            spool.close_db()
        if self.quarantine is not None:
            self.quarantine.close()

    # -- state ---------------------------------------------------------------------

    def storage_errors(self) -> list[str]:
        """One line per database that cannot be written now (its file and the fix)."""
        stores = [*(s.health for s in (self.spool, *self.drain_spools))]
        if self.quarantine is not None:
            stores.append(self.quarantine.health)
        return [health.error for health in stores if health.error is not None]

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready once every sink started and until shutdown, unless storage cannot write.

        Failing sinks are listed (``degraded``, still ready: events are spooled);
        a database that cannot be written makes it unready (``storage_failing``)
        until a write succeeds again, with ``reason`` naming the file.
        """
        sinks = {}
        failing = []
        for name, runner in self.runners.items():
            failing_for = runner.failing_for()
            stats = runner.statistics()
            sinks[name] = {
                "pending": stats["pending_events"],
                "failing_for": round(failing_for, 3),
                "last_error": self._redactor.redact(stats["last_error"] or "") or None,
            }
            if failing_for > runner.config.failing_after:
                failing.append(name)
        status = "ready" if self.ready else ("stopping" if self.stopping.is_set() else "starting")
        if self.ready and failing:
            status = "degraded"
        detail: dict[str, Any] = {"status": status, "failing_sinks": failing, "sinks": sinks}
        storage = [self._redactor.redact(line) for line in self.storage_errors()]
        if storage:
            detail["storage_errors"] = storage
            if self.ready:
                detail["status"] = "storage_failing"
                detail["reason"] = storage[0]
            return False, detail
        return self.ready, detail

    # -- running -------------------------------------------------------------------

    async def run(
        self,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
        handle_signals: bool = False,
        sockets: Any | None = None,
    ) -> None:
        """Serve until shut down. Reports the bound URLs through ``task_status``.

        A startup error (a RouterError such as PluginError or StorageUnusable)
        is raised as itself, not inside an exception group.
        """
        try:
            await self._run(task_status, shutdown_trigger, handle_signals, sockets)
        except BaseExceptionGroup as group:
            error = _lone_error(group)
            if error is None:
                raise
            raise error from None

    async def _run(
        self, task_status: Any, shutdown_trigger: Any, handle_signals: bool, sockets: Any
    ) -> None:
        await self.open()
        try:
            async with trio.open_nursery() as storage:
                for spool in (self.spool, *self.drain_spools):
                    await storage.start(spool.run)
                storage.start_soon(self._probe_quarantine)
                if self.redis is not None:
                    await storage.start(self.redis.run)
                    for name, queue in self.queues.items():
                        if name not in self.spool.queues:  # counted once connected
                            self.metrics.sink_recovered.labels(name).inc(queue.recovered)
                try:
                    await self._deliver_and_serve(
                        task_status, shutdown_trigger, handle_signals, sockets
                    )
                finally:
                    with trio.CancelScope(shield=True):
                        for spool in (self.spool, *self.drain_spools):
                            await spool.close()
                        if self.redis is not None:
                            await self.redis.close()
                    storage.cancel_scope.cancel()
        finally:
            await self.close()
            log.info("daemon.stopped")

    async def _probe_quarantine(self) -> None:
        """While the quarantine cannot be written, try a write now and then (readiness)."""
        while True:
            await trio.sleep(PROBE_INTERVAL)
            if self.quarantine is not None and self.quarantine.health.error is not None:
                await self.quarantine.probe()

    async def _deliver_and_serve(
        self, task_status: Any, shutdown_trigger: Any, handle_signals: bool, sockets: Any
    ) -> None:
        async with trio.open_nursery() as delivery:
            for runner in (*self.runners.values(), *self.drain_runners):
                await delivery.start(runner.run)
            for plugin, _ in call_each(
                self.registry.pm, "router_startup", registry=self.registry, config=self.config
            ):
                log.debug("plugin.started", plugin=plugin)
            #: The ASGI app; its ``inflight`` admission bounds request bytes in progress.
            self.asgi = create_asgi(self)
            app = wrap_app(self.asgi, 1 << 20, None)
            async with trio.open_nursery() as http:
                if handle_signals:
                    http.start_soon(self._watch_signals, delivery.cancel_scope)
                if shutdown_trigger is not None:
                    http.start_soon(self._when, shutdown_trigger)
                binds = await http.start(self._serve_http, app, sockets, http.cancel_scope)
                self.ready = True
                log.info(
                    "daemon.ready",
                    binds=binds,
                    sources=len(self.sources),
                    sinks=len(self.runners),
                    data_dir=str(self.data_dir),
                )
                task_status.started(binds)
            stopped_at = self._stopped_at
            log.info("daemon.http_stopped")
            for runner in (*self.runners.values(), *self.drain_runners):
                runner.stop()
            delivery.cancel_scope.deadline = max(
                stopped_at + self.config.server.shutdown_timeout, trio.current_time() + 0.1
            )
        log.info("daemon.sinks_stopped")
        for plugin, hook_error in self._shutdown_hooks():
            log.error("plugin.shutdown_failed", plugin=plugin, error=hook_error)

    async def _serve_http(
        self,
        app: Any,
        sockets: Any,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[list[str]],
    ) -> None:
        server = self.config.server
        hc = hypercorn.config.Config()
        hc.bind = [server.bind]
        hc.graceful_timeout = server.shutdown_timeout
        hc.accesslog = "-" if server.access_log else None
        # Through the root handler (JSON, redacted): an exception that escapes the
        # application is logged, not dropped. Its level is set by configure_logging.
        hc.errorlog = logging.getLogger("hypercorn.error")
        # hypercorn's idle timer runs until a request's head is complete, so it
        # is the header timeout too. Its read_timeout is left off: it limits
        # each read, so it would never stop a client sending a byte a second,
        # and it would cut a client waiting for its answer.
        hc.keep_alive_timeout = server.keepalive_timeout
        hc.h11_max_incomplete_size = server.max_header_bytes
        hc.h2_max_header_list_size = server.max_header_bytes
        await serve_http(
            app,
            hc,
            max_connections=server.max_connections,
            sockets=sockets,
            shutdown_trigger=self._shutdown_started,
            task_status=task_status,
        )
        scope.cancel()  # the watchers in the http nursery

    async def _shutdown_started(self) -> None:
        await self.stopping.wait()
        self.ready = False
        self._stopped_at = trio.current_time()
        log.info("daemon.stopping", shutdown_timeout=self.config.server.shutdown_timeout)

    def stop(self) -> None:
        """Begin a graceful shutdown."""
        self.stopping.set()

    async def _when(self, trigger: Callable[[], Awaitable[Any]]) -> None:
        await trigger()
        self.stop()

    async def _watch_signals(self, delivery_scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                if not self.stopping.is_set():
                    log.info("daemon.signal", signal=signal.Signals(signum).name)
                    self.stop()
                else:
                    log.warning("daemon.forced_stop", signal=signal.Signals(signum).name)
                    delivery_scope.cancel()
                    return

    def _shutdown_hooks(self) -> list[tuple[str, str]]:
        # A plugin's shutdown must not block the others.
        return call_each_collecting(
            self.registry.pm, "router_shutdown", registry=self.registry, config=self.config
        )


def _lone_error(group: BaseExceptionGroup) -> RouterError | None:
    """The group's only exception if it is a RouterError (a startup error), else None."""
    leaves = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    if len(leaves) == 1 and isinstance(leaves[0], RouterError):
        return leaves[0]
    return None


async def serve(
    config: RouterConfig,
    registry: Registry,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    handle_signals: bool = False,
    data_dir: Path | None = None,
    sockets: Any | None = None,
    worker: int | None = None,
    drain: Sequence[Path] = (),
) -> None:
    """Run a daemon until shutdown; ``await nursery.start(serve, ...)`` returns its URLs.

    :raises DataDirLocked: if another daemon uses the data directory.
    :raises PluginError: if a sink fails to open or a startup hook raises.
    """
    if data_dir is not None:
        config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, data_dir=Path(data_dir))
        )
    daemon = Daemon(config, registry, worker=worker, drain=drain)
    with lock_data_dir(daemon.data_dir), contextlib.ExitStack() as locks:
        for path in drain:
            # The group's root data dir is already locked by the worker supervisor.
            if Path(path) != Path(config.server.data_dir):
                locks.enter_context(lock_data_dir(path))
        await daemon.run(
            task_status=task_status,
            shutdown_trigger=shutdown_trigger,
            handle_signals=handle_signals,
            sockets=sockets,
        )
