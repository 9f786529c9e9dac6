"""What outlives one topology: storage, queues, the Redis link and HTTP connection pools.

A :class:`~router.topology.Topology` is built from a config and these. A
second topology built beside a running one (a reload) takes the same
resources, so a sink whose config did not change keeps its queue and its
upstream connections, and nothing pending is reopened or lost.

::

    Resources.open()     open the spool, the quarantine and every sink's queue
    Resources.run()      the storage tasks: spool writers, the Redis link, probes
    Resources.close()    close connection pools and databases
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from router.config import RedisConfig, SinkConfig
from router.errors import StorageError
from router.metrics import Metrics
from router.outbound import ConnectionPool
from router.quarantine import Quarantine
from router.queue import SinkQueue
from router.roles import Role, delivers
from router.spool import PROBE_INTERVAL, Spool
from router.storage import make_data_dir
from router.tap import TapHub

if TYPE_CHECKING:
    from router.redisconn import RedisLink
    from router.sink import Sink

__all__ = ["Resources"]

#: Longest a status read waits for Redis to count a sink's dead letters.
COUNT_TIMEOUT = 1.0
#: A count of the spool's dead letters and the quarantine that took ``t``
#: seconds is reused for ``COUNT_REUSE * t`` seconds: under 1 ms (the usual
#: case) it is fresh on every read, 0.5 s (a million dead letters) lasts 10 s.
COUNT_REUSE = 20


class Resources:
    """One process's storage, queues, Redis link and HTTP clients, shared by its topologies."""

    def __init__(
        self,
        data_dir: Path,
        metrics: Metrics,
        *,
        redis: RedisConfig | None = None,
        worker: int | None = None,
        role: Role = "all",
    ):
        self.data_dir = data_dir
        self.metrics = metrics
        self.worker = worker
        #: Which part of the work this process does (:mod:`router.roles`).
        self.role = role
        self.spool = Spool(data_dir / "spool.db", role=role)
        self._quarantine: Quarantine | None = None
        #: Every sink's queue: a SqliteQueue of the spool, or a RedisQueue (``buffer: redis``).
        self.queues: dict[str, SinkQueue] = {}
        #: Spools of former workers (``--workers``): delivered from, never written to.
        self.drain_spools: list[Spool] = []
        self._redis_config = redis
        self._redis: RedisLink | None = None
        self._clients: list[ConnectionPool] = []
        #: The storage nursery, once :meth:`run` started: a link first needed later starts there.
        self._nursery: trio.Nursery | None = None
        self._redis_running = False
        self._counting = trio.Lock()
        self._counted: tuple[float, tuple[dict[str, int], int | None]] = (-math.inf, ({}, None))
        #: Where ingest and delivery copy what passes them while a tap is attached.
        self.tap = TapHub()

    # -- opening ---------------------------------------------------------------------

    async def open(self, sinks: Mapping[str, SinkConfig]) -> None:
        """Open the spool, the quarantine and every sink's queue.

        No network I/O: the Redis link connects in :meth:`run`.
        """
        make_data_dir(self.data_dir)
        self._quarantine = Quarantine(self.data_dir / "quarantine.db", probe=True)
        await self.spool.open([])
        await self.add_queues(sinks)

    async def add_queues(self, sinks: Mapping[str, SinkConfig]) -> list[str]:
        """Open a queue for each sink that has none yet; the names of those opened.

        A sink that had a queue keeps it, even if its config no longer names
        it: its pending events stay until a config brings the sink back.
        """
        new = {name: cfg for name, cfg in sinks.items() if name not in self.queues}
        await self.spool.add(
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
                for name, cfg in new.items()
                if cfg.buffer != "redis"
            ]
        )
        for name, cfg in new.items():
            queue = self.spool.queues[name] if cfg.buffer != "redis" else self._redis_queue(cfg)
            self.queues[name] = queue
            if cfg.buffer == "redis" and self._redis_running:
                await queue.open()  # the link opened the others when it connected
            # Every sink has the series (at 0 unless Redis stored a write whose reply was lost).
            self.metrics.sink_stored_unacknowledged.labels(name)
            if self.role == "delivery":
                # The ingest process counts what it finds pending and every
                # replay; every row new to this one is one of those.
                continue
            if cfg.buffer != "redis" or self._redis_running:  # else counted once connected
                self.metrics.sink_recovered.labels(name).inc(queue.recovered)
            queue.on_replayed = self.metrics.sink_replayed.labels(name).inc
        return list(new)

    async def open_drain(self, path: Path, sinks: Mapping[str, SinkConfig]) -> dict[str, SinkQueue]:
        """The queues a former worker left pending in ``path``; nothing new is written there."""
        spool = Spool(path / "spool.db")
        await spool.open([(name, {"durable": c.buffer != "memory"}) for name, c in sinks.items()])
        self.drain_spools.append(spool)
        pending = {name: queue for name, queue in spool.queues.items() if queue.pending_events}
        for name, queue in pending.items():
            self.metrics.sink_recovered.labels(name).inc(queue.recovered)
        return pending

    @property
    def quarantine(self) -> Quarantine:
        """Where events that failed validation are kept (opened by :meth:`open`)."""
        if self._quarantine is None:
            raise RuntimeError("Resources.open() was not awaited")
        return self._quarantine

    def redis_link(self) -> RedisLink:
        """The process's one RedisLink, made on first use (coredis is imported only then)."""
        if self._redis is None:
            from router.redisconn import RedisLink, default_consumer

            redis = self._redis_config
            if redis is None:  # `router check` requires a redis section for Redis users
                raise RuntimeError("a Redis link was asked for with no redis config")
            # Each worker has its own data dir, so default names differ; a
            # configured name gets the worker's index for the same reason.
            consumer = (
                f"{redis.consumer}-w{self.worker}"
                if redis.consumer and self.worker is not None
                else redis.consumer
            )
            self._redis = RedisLink(
                redis, consumer=consumer or default_consumer(self.data_dir), metrics=self.metrics
            )
        return self._redis

    def _redis_queue(self, cfg: SinkConfig) -> SinkQueue:
        from router.redisqueue import RedisQueue

        return RedisQueue(
            self.redis_link(),
            cfg.name,
            max_events=cfg.spool.max_events,
            max_bytes=cfg.spool.max_bytes,
            dedup_window=cfg.dedup_window,
            on_stored_unacknowledged=self.metrics.sink_stored_unacknowledged.labels(cfg.name).inc,
        )

    def delivers(self, cfg: SinkConfig) -> bool:
        """Whether this process delivers the sink ``cfg`` (:func:`router.roles.delivers`).

        Once the sink has a queue here, the queue decides, not ``cfg``: a
        reload that changes ``buffer`` keeps the queue (and who delivers it)
        until a restart.
        """
        if cfg.name in self.queues:
            return self.hands_out(cfg.name)
        return delivers(self.role, cfg)

    def hands_out(self, name: str) -> bool:
        """Whether this process delivers the queue ``name`` (False: another process does)."""
        queue = self.spool.queues.get(name)
        return queue is None or queue.hands_out

    def http_client(self, cfg: SinkConfig) -> ConnectionPool:
        """A connection pool for one sink, sized by ``max_concurrency``; closed by :meth:`close`."""
        client = ConnectionPool(max_connections=cfg.max_concurrency, timeout=cfg.timeout)
        self._clients.append(client)
        return client

    async def close_client(self, client: ConnectionPool) -> None:
        """Close one sink's pool before shutdown."""
        if client in self._clients:
            self._clients.remove(client)
            with trio.CancelScope(shield=True):
                await client.aclose()

    async def release_sink(self, sink: Sink) -> None:
        """Close the pool given to ``sink``, which a reload replaced and which is closed."""
        if isinstance(sink.transport, ConnectionPool):
            await self.close_client(sink.transport)

    # -- running ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the storage tasks until cancelled; started once every writer is up.

        Cancel this only after :meth:`flush`: the spool commits what is pending there.
        """
        async with trio.open_nursery() as nursery:
            for spool in (self.spool, *self.drain_spools):
                await nursery.start(spool.run)
            nursery.start_soon(self._probe_quarantine, self.quarantine)
            self._nursery = nursery
            await self.start_redis()
            task_status.started()

    async def start_redis(self) -> None:
        """Connect the Redis link if one was made and is not running (at start, or a reload)."""
        if self._redis is None or self._redis_running or self._nursery is None:
            return
        await self._nursery.start(self._redis.run)
        self._redis_running = True
        for name, queue in self.queues.items():
            if name not in self.spool.queues and self.role != "delivery":  # counted once connected
                self.metrics.sink_recovered.labels(name).inc(queue.recovered)

    async def flush(self) -> None:
        """Commit what is pending (acks, memory buffers) and give back unsent Redis reads."""
        with trio.CancelScope(shield=True):
            for spool in (self.spool, *self.drain_spools):
                await spool.close()
            if self._redis is not None:
                await self._redis.close()

    async def close(self) -> None:
        """Close every connection pool and database."""
        with trio.CancelScope(shield=True):
            for client in self._clients:
                await client.aclose()
        for spool in (self.spool, *self.drain_spools):
            spool.close_db()
        if self._quarantine is not None:
            self._quarantine.close()

    @staticmethod
    async def _probe_quarantine(quarantine: Quarantine) -> None:
        """While the quarantine cannot be written, try a write now and then (readiness)."""
        while True:
            await trio.sleep(PROBE_INTERVAL)
            if quarantine.health.error is not None:
                await quarantine.probe()

    # -- state -----------------------------------------------------------------------

    async def stored_counts(self, sinks: Mapping[str, SinkConfig]) -> dict[str, Any]:
        """Dead letters stored per sink and events quarantined, read from the stores.

        ``{"dead_letters": {sink: n | None}, "quarantined": n | None}``: None
        where a store cannot say now (a database that cannot be read, Redis
        down or slower than :data:`COUNT_TIMEOUT`), so a status page never waits on it.
        SQLite counts scan an index; a slow one is reused for a while (see
        :data:`COUNT_REUSE`), so however often the status is read, counting a
        large table keeps at most a few percent of one thread busy.
        """
        spooled, quarantined = await self._local_counts()
        dead: dict[str, int | None] = dict.fromkeys(sinks)
        for name, cfg in sinks.items():
            if cfg.buffer != "redis":
                dead[name] = spooled.get(name, 0 if name in self.spool.queues else None)
        streams = [name for name, cfg in sinks.items() if cfg.buffer == "redis"]
        if streams and self._redis is not None and self._redis_running:
            dead.update(await self._redis_dead_letters(streams))
        return {"dead_letters": dead, "quarantined": quarantined}

    async def _local_counts(self) -> tuple[dict[str, int], int | None]:
        """The spool's dead letters per sink and the quarantine's events; one count at a time."""
        async with self._counting:  # readers arriving meanwhile take its result
            reuse_until, counts = self._counted
            if trio.current_time() < reuse_until:
                return counts
            started = trio.current_time()
            try:
                spooled = await self.spool.dead_letter_counts()
            except StorageError:
                spooled = {}
            quarantined = None
            # One quarantine for both processes of a pair: the ingest process counts it.
            if self._quarantine is not None and self.role != "delivery":
                with contextlib.suppress(sqlite3.Error):
                    quarantined = await self._quarantine.count()
            now = trio.current_time()
            self._counted = (now + (now - started) * COUNT_REUSE, (spooled, quarantined))
            return spooled, quarantined

    async def _redis_dead_letters(self, sinks: list[str]) -> dict[str, int]:
        """Each sink's dead-letter stream length (XLEN), all within :data:`COUNT_TIMEOUT`."""
        from router.redisdead import RedisDeadLetters

        counts: dict[str, int] = {}
        with trio.move_on_after(COUNT_TIMEOUT):  # a hung Redis: the rest stay unknown
            for sink in sinks:
                with contextlib.suppress(StorageError):  # RedisUnavailable: this one unknown
                    counts[sink] = await RedisDeadLetters(self.redis_link(), sink).count()
        return counts

    def storage_errors(self) -> list[str]:
        """One line per database that cannot be written now (its file and the fix)."""
        stores = [s.health for s in (self.spool, *self.drain_spools)]
        if self._quarantine is not None:
            stores.append(self._quarantine.health)
        return [health.error for health in stores if health.error is not None]
