"""The daemon: the process lifecycle of one router. Nurseries, signals, serving, draining.

What runs is built elsewhere: :class:`~router.resources.Resources` (storage,
queues, the Redis link, connection pools) and, from them and the config,
the :class:`~router.topology.Topology` (sources, sinks, routes, limiters,
the ingest table). The daemon runs them, each in a nursery nested in the
previous one::

    storage nursery      Resources.run: spool writers, Redis link (outlive their users)
    └── delivery nursery one SinkRunner per sink of the topology
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

import hypercorn.config
import structlog
import trio
from hypercorn.utils import wrap_app

from router.app import create_asgi, serve_topology
from router.config import RouterConfig
from router.errors import DataDirLocked, RouterError, StorageUnusable
from router.fastpath import IngestDispatcher
from router.http import serve_http
from router.log import Redactor
from router.metrics import Metrics
from router.registry import Registry, call_each, call_each_collecting
from router.resources import Resources
from router.storage import describe, make_data_dir
from router.topology import Topology, build_topology

__all__ = ["Daemon", "lock_data_dir", "serve"]

log = structlog.get_logger()


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
    """One running router: its resources, its topology, and the lifecycle around them."""

    def __init__(
        self,
        config: RouterConfig,
        registry: Registry,
        *,
        data_dir: Path | None = None,
        worker: int | None = None,
        drain: Sequence[Path] = (),
        handle_signals: bool = False,
    ):
        self.config = config
        self.registry = registry
        self.data_dir = Path(data_dir or config.server.data_dir)
        #: Spool directories of former workers: delivered from, never written to.
        self.drain = list(drain)
        #: SIGTERM and SIGINT stop it (a second one skips the waiting).
        self.handle_signals = handle_signals
        self.metrics = Metrics()
        if worker is not None:
            self.metrics.worker_info(worker)
        self.resources = Resources(self.data_dir, self.metrics, redis=config.redis, worker=worker)
        #: What is served: set by :meth:`open`, read by requests as they start.
        self.topology: Topology | None = None
        self.asgi: IngestDispatcher = create_asgi(config.server)
        self.ready = False
        self.stopping = trio.Event()
        self._stopped_at = 0.0
        #: /readyz is unauthenticated, and a sink's last error may quote its key.
        self._redactor = Redactor(config.secrets)

    async def open(self) -> Topology:
        """Open storage and build the topology (no network I/O); serve it once running."""
        await self.resources.open(self.config.sinks)
        drains = [await self.resources.open_drain(path, self.config.sinks) for path in self.drain]
        for path, queues in zip(self.drain, drains, strict=True):
            for name, queue in queues.items():
                log.info("daemon.draining", sink=name, path=str(path), pending=queue.pending_events)
        self.topology = build_topology(self.config, self.registry, self.resources, drains=drains)
        return self.topology

    # -- state ---------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready once every sink started and until shutdown, unless storage cannot write.

        Failing sinks are listed (``degraded``, still ready: events are spooled);
        a database that cannot be written makes it unready (``storage_failing``)
        until a write succeeds again, with ``reason`` naming the file.
        """
        sinks = {}
        failing = []
        runners = self.topology.runners if self.topology is not None else {}
        for name, runner in runners.items():
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
        storage = [self._redactor.redact(line) for line in self.resources.storage_errors()]
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
        sockets: Any | None = None,
    ) -> None:
        """Serve until shut down. Reports the bound URLs through ``task_status``.

        A startup error (a RouterError such as PluginError or StorageUnusable)
        is raised as itself, not inside an exception group.
        """
        try:
            await self._run(task_status, shutdown_trigger, sockets)
        except BaseExceptionGroup as group:
            error = _lone_error(group)
            if error is None:
                raise
            raise error from None

    async def _run(self, task_status: Any, shutdown_trigger: Any, sockets: Any) -> None:
        try:
            topology = await self.open()
            async with trio.open_nursery() as storage:
                await storage.start(self.resources.run)
                try:
                    await self._deliver_and_serve(topology, task_status, shutdown_trigger, sockets)
                finally:
                    await self.resources.flush()
                    storage.cancel_scope.cancel()
        finally:
            await self.resources.close()
            log.info("daemon.stopped")

    async def _deliver_and_serve(
        self, topology: Topology, task_status: Any, shutdown_trigger: Any, sockets: Any
    ) -> None:
        runners = (*topology.runners.values(), *topology.drains)
        async with trio.open_nursery() as delivery:
            for runner in runners:
                await delivery.start(runner.run)
            for plugin, _ in call_each(
                self.registry.pm, "router_startup", registry=self.registry, config=self.config
            ):
                log.debug("plugin.started", plugin=plugin)
            serve_topology(self.asgi, self, topology)
            app = wrap_app(self.asgi, 1 << 20, None)
            async with trio.open_nursery() as http:
                if self.handle_signals:
                    http.start_soon(self._watch_signals, delivery.cancel_scope)
                if shutdown_trigger is not None:
                    http.start_soon(self._when, shutdown_trigger)
                binds = await http.start(self._serve_http, app, sockets, http.cancel_scope)
                self.ready = True
                log.info(
                    "daemon.ready",
                    binds=binds,
                    sources=len(topology.sources),
                    sinks=len(topology.sinks),
                    data_dir=str(self.data_dir),
                )
                task_status.started(binds)
            stopped_at = self._stopped_at
            log.info("daemon.http_stopped")
            for runner in runners:
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
    daemon = Daemon(config, registry, worker=worker, drain=drain, handle_signals=handle_signals)
    with lock_data_dir(daemon.data_dir), contextlib.ExitStack() as locks:
        for path in drain:
            # The group's root data dir is already locked by the worker supervisor.
            if Path(path) != Path(config.server.data_dir):
                locks.enter_context(lock_data_dir(path))
        await daemon.run(
            task_status=task_status, shutdown_trigger=shutdown_trigger, sockets=sockets
        )
