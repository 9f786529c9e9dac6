"""One daemon's link to the shared Redis: the client, key names and reconnect backoff.

Every Redis feature of a daemon (``buffer: redis`` queues, ``backend: redis``
limits) goes through one :class:`RedisLink`, so they share one connection
pool and one view of whether Redis is reachable:

- **Clients.** ``redis://``/``rediss://`` is one node, ``redis+sentinel://
  h:p[,h:p]/service`` asks Sentinel for the primary of ``service``,
  ``redis+cluster://h:p[,h:p]`` is Redis Cluster (coredis, on Trio via anyio).
- **Keys.** ``{<prefix>:<sink>}:stream``, ``…:dead``, ``…:bytes``,
  ``…:dedup:<event id>``, ``{<prefix>:rl:<source>}:<key>`` and
  ``{<prefix>:rl:sink:<sink>}:requests|events``: the part in braces is the
  Cluster hash tag, so every key one script touches lives in one slot.
- **Backoff.** A connection error or timeout marks Redis down; calls made
  while it is down fail at once with :class:`RedisUnavailable` (a
  :class:`~router.spool.StorageError`, so ingest answers 503) until the next
  probe, after an exponential backoff with full jitter; the first call that
  succeeds marks it up again. Nothing here ever raises into the daemon's
  nursery: :meth:`RedisLink.run` logs and carries on.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio
import coredis
import structlog
import trio
from coredis.commands.script import Script
from coredis.connection import TCPLocation
from coredis.exceptions import (
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    RedisError,
)
from coredis.retry import ConstantRetryPolicy, NoRetryPolicy

from router.retry import Backoff
from router.spool import StorageError

if TYPE_CHECKING:
    from router.config import RedisConfig
    from router.metrics import Metrics

__all__ = [
    "CONNECTIVITY_ERRORS",
    "RedisLink",
    "RedisUnavailable",
    "default_consumer",
    "open_client",
]

log = structlog.get_logger()
T = TypeVar("T")

#: Errors that say Redis is unreachable (or failing over), not that a command is wrong.
CONNECTIVITY_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    ClusterDownError,
    ReadOnlyError,  # a primary demoted to replica during a failover
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


class RedisUnavailable(StorageError):
    """Redis cannot be reached now; the call was not carried out (or its outcome is unknown)."""


def default_consumer(data_dir: Path | str) -> str:
    """A consumer name unique per daemon and stable across its restarts: host + data dir.

    A daemon restarted with the same data dir finds the entries it had taken
    at once; a daemon that never comes back has them claimed by the others
    after ``claim_idle``.
    """
    digest = hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}-{digest}"


def _hosts(netloc: str) -> list[tuple[str, int]]:
    """``[user:pass@]host:port[,host:port…]`` (IPv6 in brackets) -> ``[(host, port)…]``."""
    hosts = []
    for part in netloc.rpartition("@")[2].split(","):
        if part.startswith("["):
            host, _, rest = part[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = part.partition(":")
        hosts.append((host or "localhost", int(port or 6379)))
    return hosts


@asynccontextmanager
async def open_client(config: RedisConfig) -> AsyncIterator[Any]:
    """A coredis client for ``config.url``, entered (coredis clients are async context managers).

    Commands are never retried by coredis: a retried write whose first reply
    was lost would be stored twice; the callers retry with backoff instead.
    """
    url = config.url
    scheme = url.partition("://")[0]
    common: dict[str, Any] = {
        "connect_timeout": config.connect_timeout,
        "stream_timeout": config.command_timeout,
    }
    async with AsyncExitStack() as stack:
        if scheme in ("redis", "rediss"):
            client: Any = coredis.Redis.from_url(
                url,
                retry_policy=NoRetryPolicy(),
                max_connections=config.max_connections,
                **common,
            )
        else:
            parts = urlsplit(url)
            auth = {
                "username": unquote(parts.username) if parts.username else None,
                "password": unquote(parts.password) if parts.password else None,
            }
            if scheme == "redis+sentinel":
                sentinel = coredis.Sentinel(
                    [TCPLocation(host, port) for host, port in _hosts(parts.netloc)],
                    sentinel_kwargs=dict(common),
                    **common,
                    **auth,
                )
                await stack.enter_async_context(sentinel)
                client = sentinel.primary_for(parts.path.strip("/") or "mymaster")
            elif scheme == "redis+cluster":
                client = coredis.RedisCluster(
                    startup_nodes=[TCPLocation(h, p) for h, p in _hosts(parts.netloc)],
                    max_connections=config.max_connections,
                    retry_policy=ConstantRetryPolicy((ClusterDownError,), retries=2, delay=0.1),
                    **common,
                    **auth,
                )
            else:  # the config schema allows no other scheme
                raise ValueError(f"unsupported redis url scheme {scheme!r}")
        await stack.enter_async_context(client)
        yield client


class RedisLink:
    """The daemon's Redis: one client, the backoff state, and the queues' upkeep.

    Start with ``await nursery.start(link.run)``; it connects (or keeps trying
    in the background), opens every registered queue, then refreshes their
    shared counters every ``refresh_interval`` until :meth:`close`.
    """

    def __init__(self, config: RedisConfig, *, consumer: str, metrics: Metrics | None = None):
        self.config = config
        self.prefix = config.prefix
        self.consumer = consumer
        self.metrics = metrics
        self.client: Any = None
        self.backoff = Backoff(config.reconnect_initial_backoff, config.reconnect_max_backoff)
        self.queues: list[Any] = []
        self.down_since: float | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._scripts: dict[str, Any] = {}
        self._stop = trio.Event()

    # -- keys ------------------------------------------------------------------

    def key(self, tag: str, *parts: str) -> str:
        """``{<prefix>:<tag>}:<parts…>``: everything of one tag lives in one Cluster slot."""
        return ":".join((f"{{{self.prefix}:{tag}}}", *parts))

    # -- calls -------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self.down_since is None

    def eval(self, client: Any, source: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a Lua script with EVALSHA (loaded once; loaded again on NOSCRIPT)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = Script(script=source)
        return script(keys, args, client=client)

    async def call(self, operation: str, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``await fn(client)``; a connectivity error becomes :class:`RedisUnavailable`.

        While Redis is marked down the call fails at once, until the backoff
        lets one probe through. Other Redis errors (a wrong command, NOGROUP)
        propagate unchanged.
        """
        if self.client is None:
            raise RedisUnavailable("redis: not connected yet")
        now = trio.current_time()
        if now < self._retry_at:
            raise RedisUnavailable(
                f"redis is unreachable (retrying in {self._retry_at - now:.2f}s)"
            )
        try:
            result = await fn(self.client)
        except CONNECTIVITY_ERRORS as exc:
            self._failed(operation, exc)
            raise RedisUnavailable(
                f"redis: {operation} failed: {type(exc).__name__}: {exc}"
            ) from exc
        self._succeeded()
        return result

    async def wait_until_retry(self) -> None:
        """Sleep until the next call may try Redis again (at once if it is up)."""
        delay = self._retry_at - trio.current_time()
        if self.client is None:  # (re)connecting: never spin
            delay = max(delay, self.backoff.initial)
        if delay > 0:
            await trio.sleep(delay)

    def _failed(self, operation: str, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.redis_errors.labels(operation).inc()
        now = trio.current_time()
        if now < self._retry_at:
            return  # a call that started before the failure was noticed
        self._failures += 1
        delay = self.backoff.delay(self._failures)
        self._retry_at = now + delay
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "redis.unavailable",
                operation=operation,
                error=f"{type(exc).__name__}: {exc}",
                error_type=type(exc).__name__,
            )
        else:
            log.debug("redis.retry_failed", operation=operation, retry_in=round(delay, 3))

    def _succeeded(self) -> None:
        if self.down_since is not None:
            log.info("redis.reconnected", down_for=round(trio.current_time() - self.down_since, 3))
            self.down_since = None
        self._failures = 0
        self._retry_at = 0.0

    # -- running -----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Enter the client, open the queues (a bounded wait if Redis is down), keep them fresh.

        Reports started even if Redis is unreachable: the daemon serves what
        it can (503 for Redis sinks) and this task keeps trying.
        """
        started = False
        while not self._stop.is_set():
            try:
                async with open_client(self.config) as client:
                    self.client = client
                    try:
                        with trio.move_on_after(
                            self.config.connect_timeout + self.config.command_timeout
                        ):
                            for queue in self.queues:
                                await queue.open()
                        if not started:
                            task_status.started()
                            started = True
                        await self._upkeep()
                        return
                    finally:
                        self.client = None
            except (RedisError, *CONNECTIVITY_ERRORS) as exc:
                # Cluster and Sentinel clients look for their nodes when entered.
                self._failed("connect", exc)
                if not started:
                    task_status.started()
                    started = True
                with trio.move_on_at(self._retry_at):
                    await self._stop.wait()

    async def _upkeep(self) -> None:
        interval = self.config.refresh_interval
        while not self._stop.is_set():
            with trio.move_on_after(interval):
                await self._stop.wait()
            for queue in self.queues:
                if self._stop.is_set():
                    break
                await queue.upkeep()

    async def close(self) -> None:
        """Give back what the queues hold but did not hand out, then stop :meth:`run`."""
        for queue in self.queues:
            await queue.aclose()
        self._stop.set()
