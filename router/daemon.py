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
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
import trio
from hypercorn.utils import wrap_app

from router.admin import create_admin_app
from router.app import create_asgi
from router.config import RouterConfig
from router.errors import RouterError
from router.fastpath import IngestDispatcher
from router.http import hypercorn_config, serve_http
from router.listener import listen
from router.loader import ConfigReader, config_reader
from router.log import Redactor, learn_secrets
from router.metrics import Metrics
from router.registry import Registry, call_each, call_each_collecting
from router.reload import (
    Reload,
    ReloadHistory,
    applicable,
    compare,
    config_hash,
    unappliable,
)
from router.resources import Resources
from router.roles import Role, delivery_config
from router.runtime import Runtime
from router.status import Rates
from router.storage import lock_data_dir
from router.topology import Topology, build_topology
from router.workergroup import GroupMetrics, GroupSockets, WorkerGroup

__all__ = ["Daemon", "serve"]

log = structlog.get_logger()

#: ``--watch``: changes closer together than this are one reload.
WATCH_DEBOUNCE_MS = 300
#: ``--watch``: how soon the watch reports that it is set up.
WATCH_READY_MS = 500
#: Open admin connections at most (a few operators, their taps and dashboards).
ADMIN_MAX_CONNECTIONS = 64


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
        read_config: ConfigReader | None = None,
        watch: bool = False,
        group: GroupSockets | None = None,
        role: Role = "all",
    ):
        #: What this process does of the work (:mod:`router.roles`).
        self.role = role
        #: The delivery process runs no source (and so does each of its reloads).
        self.config = delivery_config(config) if role == "delivery" else config
        self.registry = registry
        self.data_dir = Path(data_dir or config.server.data_dir)
        #: Spool directories of former workers: delivered from, never written to.
        self.drain = list(drain)
        #: SIGTERM and SIGINT stop it (a second one skips the waiting); SIGHUP reloads.
        self.handle_signals = handle_signals
        #: How :meth:`reload` reads the config again (default: ``config.file``, no overrides).
        self.read_config = read_config or config_reader(config.file)
        #: Reload when the config file changes (``router run --watch``).
        self.watch = watch
        #: The hash of the config file as it was when this config was read.
        self._read_hash = config_hash(config)
        self.metrics = Metrics()
        #: This process's index in a ``server.workers > 1`` group, or None.
        self.worker = worker
        #: In a group: the shared admin socket, this worker's private one, and the others'.
        self.group = group
        self.started_at = time.time()
        #: Where the admin listener listens (``http://…`` or ``unix:…``), once it does.
        self.admin_url: str | None = None
        self.rates = Rates(self.metrics)
        if worker is not None:
            self.metrics.worker_info(worker)
        self.reloads = ReloadHistory(self.metrics.registry)
        self.resources = Resources(
            self.data_dir, self.metrics, redis=config.redis, worker=worker, role=role
        )
        self.tap = self.resources.tap
        self.asgi: IngestDispatcher = create_asgi(config.server)
        self.runtime = Runtime(self.resources, self.asgi, self)
        self.ready = False
        self.stopping = trio.Event()
        self._stopped_at = 0.0
        #: /readyz is unauthenticated, and a sink's last error may quote its key.
        self._redactor = Redactor(config.secrets)
        self._reloading = trio.Lock()
        self._delivery: trio.Nursery | None = None
        self._opened: Topology | None = None

    async def open(self) -> Topology:
        """Open storage and build the topology (no network I/O); serve it once running."""
        await self.resources.open(self.config.sinks)
        drains = [await self.resources.open_drain(path, self.config.sinks) for path in self.drain]
        for path, queues in zip(self.drain, drains, strict=True):
            for name, queue in queues.items():
                log.info("daemon.draining", sink=name, path=str(path), pending=queue.pending_events)
        self._opened = build_topology(self.config, self.registry, self.resources, drains=drains)
        return self._opened

    # -- reloading -------------------------------------------------------------------

    async def reload(self, trigger: str = "api") -> Reload:
        """Read the config again and apply it without dropping a request or an event.

        An invalid config changes nothing (``rejected``, with its problems).
        Otherwise a second topology is built beside the running one and
        swapped in: what did not change carries over, a changed sink's new
        runner takes over its queue, and a removed sink's queue stays, its
        events pending (``orphaned_sinks`` in /readyz) until a config brings
        it back. Settings only a restart can apply keep their running values
        and are reported (``restart_required``).
        """
        async with self._reloading:
            if self.stopping.is_set() or self._delivery is None:
                return self.reloads.record(
                    trigger, "rejected", "-", problems=["the router is not running"]
                )
            try:
                new = self.read_config(self.registry)
            except RouterError as exc:
                return self.reloads.record(trigger, "rejected", "-", problems=self._lines(exc))
            if self.role == "delivery":
                new = delivery_config(new, running=self.config)
            changes = compare(self.config, new)
            digest = config_hash(new)
            if changes.empty:
                return self.reloads.record(trigger, "unchanged", digest, changes=changes)
            config = applicable(self.config, new)
            learn_secrets(config.secrets)
            problems = unappliable(config)
            if problems:
                return self.reloads.record(trigger, "rejected", digest, problems=problems)
            try:
                await self.resources.add_queues(config.sinks)
                topology = build_topology(
                    config,
                    self.registry,
                    self.resources,
                    previous=self.topology,
                    runners=self.runtime.runners,
                )
                await self.resources.start_redis()
                await self.runtime.switch(topology)
            except RouterError as exc:
                return self.reloads.record(trigger, "rejected", digest, problems=self._lines(exc))
            self.config = config
            return self.reloads.record(trigger, "applied", digest, changes=changes)

    def _lines(self, exc: RouterError) -> list[str]:
        """Why a reload was rejected, one redacted line per problem."""
        return [self._redactor.redact(line) for line in str(exc).splitlines()]

    async def reload_shielded(self, trigger: str) -> Reload:
        """:meth:`reload`, not cancelled halfway by a shutdown that starts meanwhile."""
        with trio.CancelScope(shield=True):
            return await self.reload(trigger)

    @property
    def topology(self) -> Topology | None:
        """What is served now (None until :meth:`open`)."""
        return self.runtime.topology

    def orphaned(self) -> dict[str, int]:
        """Queues no sink of the running config uses, with their pending events."""
        return self.runtime.orphaned()

    async def stored_counts(self) -> dict[str, Any]:
        """Dead letters stored per sink of the running config, and events quarantined."""
        topology = self.topology
        sinks = topology.config.sinks if topology is not None else {}
        return await self.resources.stored_counts(sinks)

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
                "oldest_age": round(stats["oldest_age"], 3),
                "failing_for": round(failing_for, 3),
                "last_error": self._redactor.redact(stats["last_error"] or "") or None,
            }
            if failing_for > runner.config.failing_after:
                failing.append(name)
        status = "ready" if self.ready else ("stopping" if self.stopping.is_set() else "starting")
        if self.ready and failing:
            status = "degraded"
        detail: dict[str, Any] = {"status": status, "failing_sinks": failing, "sinks": sinks}
        orphaned = self.orphaned()
        if orphaned:
            detail["orphaned_sinks"] = orphaned
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
        admin = self.config.admin
        if not admin.enabled:
            admin_sockets = None
        elif self.group is not None:  # bound once by the supervisor, for every worker
            admin_sockets = self.group.admin
        else:
            admin_sockets = listen(admin.bind, option="admin.bind or --admin-bind")
        try:
            topology = await self.open()
            async with trio.open_nursery() as storage:
                await storage.start(self.resources.run)
                try:
                    await self._deliver_and_serve(
                        topology, task_status, shutdown_trigger, sockets, admin_sockets
                    )
                finally:
                    await self.resources.flush()
                    storage.cancel_scope.cancel()
        finally:
            await self.resources.close()
            log.info("daemon.stopped")

    async def _deliver_and_serve(
        self,
        topology: Topology,
        task_status: Any,
        shutdown_trigger: Any,
        sockets: Any,
        admin_sockets: Any,
    ) -> None:
        async with trio.open_nursery() as delivery:
            self._delivery = delivery
            await self.runtime.start(topology, delivery)
            for plugin, _ in call_each(
                self.registry.pm, "router_startup", registry=self.registry, config=self.config
            ):
                log.debug("plugin.started", plugin=plugin)
            peers = None
            if self.group is not None:
                peers = WorkerGroup(
                    self.group.paths,
                    lambda: self.config.admin.token,
                    shared_sinks=self._shared_sinks,
                )
            app = wrap_app(GroupMetrics(self.asgi, peers) if peers else self.asgi, 1 << 20, None)
            async with trio.open_nursery() as http:
                if self.handle_signals:
                    http.start_soon(self._watch_signals, delivery.cancel_scope)
                if shutdown_trigger is not None:
                    http.start_soon(self._when, shutdown_trigger)
                if self.watch:
                    http.start_soon(self._watch_config)
                if self.role == "delivery":  # serves no source: waits for the signal to stop
                    binds = await http.start(self._serve_nothing, http.cancel_scope)
                else:
                    binds = await http.start(self._serve_http, app, sockets, http.cancel_scope)
                if admin_sockets is not None or self.group is not None:
                    http.start_soon(self.rates.run)
                if self.group is not None:  # what the other workers ask: answered here alone
                    await http.start(self._serve_admin, self.group.private, None)
                if admin_sockets is not None:
                    admin_urls = await http.start(self._serve_admin, admin_sockets, peers)
                    unix = self.config.admin.bind.startswith("unix:")
                    self.admin_url = self.config.admin.bind if unix else admin_urls[0]
                self.ready = True
                log.info(
                    "daemon.ready",
                    role=self.role,
                    pid=os.getpid(),
                    binds=binds,
                    admin=self.admin_url,
                    sources=len(topology.sources),
                    sinks=len(topology.sinks),
                    data_dir=str(self.data_dir),
                )
                task_status.started(binds)
            stopped_at = self._stopped_at
            log.info("daemon.http_stopped")
            async with self._reloading:  # a reload under way finishes first
                self.runtime.stop()
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
        hc = hypercorn_config(server)
        await serve_http(
            app,
            hc,
            max_connections=server.max_connections,
            sockets=sockets,
            shutdown_trigger=self._shutdown_started,
            task_status=task_status,
        )
        scope.cancel()  # the watchers in the http nursery

    async def _serve_nothing(
        self, scope: trio.CancelScope, *, task_status: trio.TaskStatus[list[str]]
    ) -> None:
        """The delivery process's stand-in for the ingest listener: no address, the same stop."""
        task_status.started([])
        await self._shutdown_started()
        scope.cancel()

    async def _serve_admin(
        self,
        sockets: Any,
        group: WorkerGroup | None,
        *,
        task_status: trio.TaskStatus[list[str]],
    ) -> None:
        """The admin listener, until the ingest listener has stopped (it cancels this).

        With ``group``, it answers for every worker of the group.
        """
        hc = hypercorn_config(self.config.server)
        hc.bind = [self.config.admin.bind]
        hc.accesslog = None
        app = wrap_app(create_admin_app(self, self.rates, group), 1 << 20, None)

        async def never() -> None:
            await trio.sleep_forever()

        await serve_http(
            app,
            hc,
            max_connections=ADMIN_MAX_CONNECTIONS,
            sockets=sockets,
            shutdown_trigger=never,
            task_status=task_status,
        )

    def _shared_sinks(self) -> frozenset[str]:
        """Sinks whose queue is one Redis stream for every worker of a group."""
        return frozenset(n for n, sink in self.config.sinks.items() if sink.buffer == "redis")

    async def _shutdown_started(self) -> None:
        await self.stopping.wait()
        self.ready = False
        self._stopped_at = trio.current_time()
        self.tap.close()  # each tap's stream ends with what it has, before the listener stops
        log.info("daemon.stopping", shutdown_timeout=self.config.server.shutdown_timeout)

    def stop(self) -> None:
        """Begin a graceful shutdown."""
        self.stopping.set()

    async def _when(self, trigger: Callable[[], Awaitable[Any]]) -> None:
        await trigger()
        self.stop()

    async def _watch_signals(self, delivery_scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("daemon.signal", signal="SIGHUP")
                    assert self._delivery is not None
                    self._delivery.start_soon(self.reload_shielded, "signal")
                elif not self.stopping.is_set():
                    log.info("daemon.signal", signal=signal.Signals(signum).name)
                    self.stop()
                else:
                    log.warning("daemon.forced_stop", signal=signal.Signals(signum).name)
                    delivery_scope.cancel()
                    return

    async def _watch_config(self) -> None:
        """Reload when the config file changes (the directory is watched: editors replace files).

        The watch is set up in a thread and says nothing when it is ready; its
        first timeout says it is, and a change made before then (since the
        config was read) is caught by comparing the file's hash.
        """
        import watchfiles

        path = await trio.Path(self.config.file).resolve()
        watching = False
        # Not recursive: the data dir may well sit below the config's directory.
        async for changes in watchfiles.awatch(
            path.parent,
            debounce=WATCH_DEBOUNCE_MS,
            recursive=False,
            rust_timeout=WATCH_READY_MS,
            yield_on_timeout=True,
        ):
            changed = any(name == str(path) for _, name in changes)
            if not watching:
                watching = True
                log.info("daemon.watching", file=str(path))
                changed = changed or config_hash(self.config) != self._read_hash
            if changed:
                await self.reload_shielded("watch")

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
    read_config: ConfigReader | None = None,
    watch: bool = False,
    group: GroupSockets | None = None,
    role: Role = "all",
) -> None:
    """Run a daemon until shutdown; ``await nursery.start(serve, ...)`` returns its URLs.

    ``read_config`` is how a reload reads the config again (SIGHUP when
    ``handle_signals``; a change to the file when ``watch``). ``group``: this
    is a worker of a ``server.workers > 1`` group (:mod:`router.workers`).
    ``role``: one of the two processes of ``server.delivery: process``
    (:mod:`router.roles`), whose supervisor holds the data directory's lock.

    :raises DataDirLocked: if another daemon uses the data directory.
    :raises PluginError: if a sink fails to open or a startup hook raises.
    """
    if data_dir is not None:
        config = _in_data_dir(config, Path(data_dir))
        if read_config is not None:
            reader = read_config

            def read_config(registry: Registry) -> RouterConfig:
                return _in_data_dir(reader(registry), Path(data_dir))

    daemon = Daemon(
        config,
        registry,
        worker=worker,
        drain=drain,
        handle_signals=handle_signals,
        read_config=read_config,
        watch=watch,
        group=group,
        role=role,
    )
    with contextlib.ExitStack() as locks:
        if role == "all":  # else the supervisor of the pair holds it
            locks.enter_context(lock_data_dir(daemon.data_dir))
        for path in drain:
            # The group's root data dir is already locked by the worker supervisor.
            if Path(path) != Path(config.server.data_dir):
                locks.enter_context(lock_data_dir(path))
        await daemon.run(
            task_status=task_status, shutdown_trigger=shutdown_trigger, sockets=sockets
        )


def _in_data_dir(config: RouterConfig, data_dir: Path) -> RouterConfig:
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=data_dir))
