"""Delivery: one :class:`SinkRunner` per sink takes batches from its queue and sends them.

A runner owns ``max_concurrency`` worker tasks (started once; no task per
event or batch). Each worker takes a batch, waits for the sink's rate limit
and any pause, calls ``Sink.send`` and then acknowledges, retries or
dead-letters the batch:

- ``SinkUnavailable`` (connection error, timeout, 408, 429, 5xx) is retried
  with exponential backoff and full jitter until ``retry.max_attempts`` or
  ``retry.max_age``, then dead-lettered. A 429 or 503 pauses the *whole* sink
  until ``Retry-After`` and halves its concurrency, which then grows back by
  one per window of successes (AIMD), so a struggling upstream is not hit by
  a retry storm.
- ``SinkRejected`` (other 4xx) of a batch of several events splits the batch
  in halves and sends each, so only the events the upstream refuses are
  dead-lettered, with its status and body.
- Any other exception from the plugin is treated as retryable and logged as
  a plugin error; it never stops the runner.

Memory: a batch holds at most ``batch.max_events`` events and
``batch.max_bytes`` bytes, except that an event larger than ``max_bytes``
is sent alone in a batch of its own. The batches taken at once by all of a
sink's workers hold at most ``max_inflight_bytes`` (plus, at most, that one
oversized event): a worker reserves ``batch.max_bytes`` of it before taking
a batch and then holds the batch's real size until the batch is settled.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
import trio

from router.errors import PluginError, SinkRejected, SinkUnavailable, StorageError
from router.inflight import ByteBudget
from router.queue import Entry, SinkQueue, payload_bytes
from router.ratelimit import OutboundLimiter
from router.retry import Backoff
from router.tap import IDLE, TapHub

if TYPE_CHECKING:
    from router.config import SinkConfig
    from router.metrics import Metrics
    from router.sink import Sink

__all__ = ["SinkRunner", "open_sink"]

log = structlog.get_logger()


class SinkRunner:
    """Delivers one sink's queue. Start with ``await nursery.start(runner.run)``."""

    def __init__(
        self,
        config: SinkConfig,
        sink: Sink,
        queue: SinkQueue,
        metrics: Metrics,
        limiter: Any | None = None,
        *,
        tap: TapHub = IDLE,
        release: Callable[[Sink], Awaitable[None]] | None = None,
    ):
        self.config = config
        self.name = config.name
        self.sink = sink
        #: Frees what the core gave a sink (its connection pool) once it is closed.
        self.release = release
        self.queue = queue
        self.metrics = metrics
        self.tap = tap
        self.limiter = limiter if limiter is not None else _local_limiter(config)
        self.backoff = Backoff(config.retry.initial_backoff, config.retry.max_backoff)
        self.concurrency = trio.CapacityLimiter(config.max_concurrency)
        #: Bytes of the batches the workers hold (``max_inflight_bytes``).
        self.inflight = ByteBudget(config.max_inflight_bytes)
        self.resume_at = 0.0
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self._successes = 0
        self._stopping = trio.Event()
        #: Set by stop() and park(): waits before a retry end at once.
        self._interrupt = trio.Event()
        #: While parked (its sink removed by a reload): set again by unpark().
        self._parked: trio.Event | None = None
        #: Sinks a reload replaced with sends still in flight: each is closed
        #: (and released) when its last send returns, or when the runner stops.
        self._retired: list[Sink] = []
        #: Sends in flight per sink.
        self._sending: Counter[Sink] = Counter()
        self._nursery: trio.Nursery | None = None
        self._workers = 0

    # -- lifecycle --------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the sink, run the workers until :meth:`stop`, then close the sink."""
        await open_sink(self.config.plugin, self.sink)
        log.info(
            "sink.started",
            sink=self.name,
            plugin=self.config.plugin,
            pending=self.queue.pending_events,
            max_concurrency=self.config.max_concurrency,
        )
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                self._add_workers()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                for sink in (*self._retired, self.sink):
                    await sink.aclose()
            log.info("sink.stopped", sink=self.name, pending=self.queue.pending_events)

    def stop(self) -> None:
        """Finish in-flight batches and exit; a memory buffer keeps delivering until empty."""
        self.queue.close()
        self._stopping.set()
        self._interrupt.set()
        self.unpark()

    def park(self) -> None:
        """Take no more batches until :meth:`unpark` (a reload removed the sink).

        The queue stays open and keeps its events; a batch being retried goes
        back to it. Sends in flight finish.
        """
        if self._parked is None:
            self._parked = trio.Event()
            self._interrupt.set()
            log.info("sink.parked", sink=self.name, pending=self.queue.pending_events)

    def unpark(self) -> None:
        """Take batches again (a reload brought the sink back)."""
        if self._parked is not None:
            self._parked.set()
            self._parked = None
            if not self._stopping.is_set():
                self._interrupt = trio.Event()

    def reconfigure(self, config: SinkConfig, sink: Sink, limiter: Any | None = None) -> None:
        """Deliver with ``config`` and ``sink`` from the next send on (a reload).

        Sends in flight finish on the sink they started with, which is closed
        and released when the last of them returns (at once if none is in
        flight). The rate limiter is kept if the limit is the same.
        """
        if config.rate_limit != self.config.rate_limit:
            self.limiter = limiter if limiter is not None else _local_limiter(config)
        old = self.sink
        self.config, self.sink = config, sink
        if sink is not old:
            self._retired.append(old)
            if not self._sending[old]:
                self._close_retired(old)
        self.backoff = Backoff(config.retry.initial_backoff, config.retry.max_backoff)
        self.concurrency.total_tokens = config.max_concurrency
        self.inflight.limit = config.max_inflight_bytes
        self._add_workers()

    async def _send(self, batch: Sequence[Entry]) -> None:
        sink = self.sink  # a reload may replace it meanwhile: this send stays on it
        self._sending[sink] += 1
        try:
            await sink.send([entry.payload for entry in batch])
        finally:
            self._sending[sink] -= 1
            if not self._sending[sink]:
                del self._sending[sink]
                if sink in self._retired:
                    self._close_retired(sink)

    def _close_retired(self, sink: Sink) -> None:
        """Close and release a replaced sink now that nothing sends through it."""
        if self._nursery is None:
            return  # stopping: run() closes what is left
        self._retired.remove(sink)
        self._nursery.start_soon(self._close, sink)

    async def _close(self, sink: Sink) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                await sink.aclose()
            finally:
                if self.release is not None:
                    await self.release(sink)
        log.info("sink.retired", sink=self.name)

    def _add_workers(self) -> None:
        """Start workers up to ``max_concurrency`` (never fewer: the limiter caps extra ones)."""
        if self._nursery is None:
            return
        while self._workers < self.config.max_concurrency:
            self._workers += 1
            self._nursery.start_soon(self._worker)

    def statistics(self) -> dict[str, Any]:
        return {
            **self.queue.statistics(),
            "concurrency": self.concurrency.total_tokens,
            "inflight_bytes": self.inflight.held,
            "paused_for": max(0.0, self.resume_at - trio.current_time()),
            "failing_since": self.failing_since,
            "last_error": self.last_error,
        }

    def failing_for(self) -> float:
        """Seconds since deliveries started failing (0 if the last one succeeded)."""
        return 0.0 if self.failing_since is None else time.time() - self.failing_since

    # -- workers -----------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            parked = self._parked
            if parked is not None:
                await parked.wait()
                continue
            batch_config = self.config.batch
            async with self.concurrency:
                held = await self.inflight.acquire(batch_config.max_bytes)
                try:
                    batch = await self.queue.get_batch(
                        batch_config.max_events, held, batch_config.max_wait
                    )
                    if not batch:
                        return
                    if self._parked is not None:  # parked while it waited for the batch
                        self.queue.release(batch)
                        continue
                    limit = self.config.batch.max_events
                    if len(batch) > limit:  # a reload lowered it while this worker waited
                        self.queue.release(batch[limit:])
                        batch = batch[:limit]
                    # The real size: less frees room for others, an oversized event more.
                    held = self.inflight.resize(held, payload_bytes(batch))
                    self.metrics.sink_batch_size.labels(self.name).observe(len(batch))
                    settled: set[int] = set()
                    try:
                        delivered = await self._deliver(
                            batch, attempts=0, first_try=time.time(), settled=settled
                        )
                    except trio.Cancelled:
                        # Only what is neither delivered nor dead-lettered yet: a part
                        # of a split batch given back too would be sent (and
                        # dead-lettered) again.
                        self.queue.release([e for e in batch if id(e) not in settled])
                        raise
                finally:
                    self.inflight.release(held)
                if not delivered and self._stopping.is_set():
                    # Shutting down and the upstream fails: leave the rest in the spool.
                    return

    async def _deliver(
        self, batch: Sequence[Entry], *, attempts: int, first_try: float, settled: set[int]
    ) -> bool:
        """Send a batch until it is delivered or dead-lettered (True), or given back (False).

        ``settled`` gets the ``id()`` of each entry acknowledged, dead-lettered
        or given back, before the queue is told.
        """
        while True:
            if not await self._wait_to_send(len(batch)):
                return self._give_back(batch, settled)
            attempts += 1
            started = trio.current_time()
            try:
                await self._send(batch)
            except SinkRejected as exc:
                self._record_failure(exc)
                return await self._rejected(
                    batch, exc, attempts=attempts, first_try=first_try, settled=settled
                )
            except SinkUnavailable as exc:
                error: Exception = exc
                retry_after = exc.retry_after
                if exc.pause:
                    self._pause(
                        retry_after if retry_after is not None else self.backoff.delay(attempts)
                    )
            except Exception as exc:  # a plugin bug must not stop delivery; retry and report it
                log.error(
                    "sink.plugin_error",
                    sink=self.name,
                    error_type=type(exc).__name__,
                    error=str(exc),
                    stage="sending",
                    exc_info=True,
                )
                error, retry_after = exc, None
            else:
                self._record_success(batch, trio.current_time() - started)
                settled.update(map(id, batch))
                await self.queue.ack(batch)
                return True
            done = await self._retryable_failure(
                batch, error, retry_after, attempts=attempts, first_try=first_try, settled=settled
            )
            if done is not None:
                return done

    def _give_back(self, batch: Sequence[Entry], settled: set[int]) -> bool:
        """The batch goes back to the queue unsent (the sink is stopping): False."""
        settled.update(map(id, batch))
        self.queue.release(batch)
        return False

    async def _rejected(
        self,
        batch: Sequence[Entry],
        exc: SinkRejected,
        *,
        attempts: int,
        first_try: float,
        settled: set[int],
    ) -> bool:
        """A refused batch is split in halves to find the refused events; one is dead-lettered."""
        if len(batch) <= 1:
            await self._dead_letter(
                batch, "rejected", attempts, exc.status, exc.body, settled=settled
            )
            return True
        half = len(batch) // 2
        log.info("sink.batch_split", sink=self.name, events=len(batch), status=exc.status)
        first = await self._deliver(
            batch[:half], attempts=attempts, first_try=first_try, settled=settled
        )
        second = await self._deliver(
            batch[half:], attempts=attempts, first_try=first_try, settled=settled
        )
        return first and second

    async def _retryable_failure(
        self,
        batch: Sequence[Entry],
        error: Exception,
        retry_after: float | None,
        *,
        attempts: int,
        first_try: float,
        settled: set[int],
    ) -> bool | None:
        """Dead-letter the batch once retries are exhausted (True), give it back if the
        sink stops during the backoff (False), or wait the backoff out (None: send again)."""
        self._record_failure(error)
        retry = self.config.retry
        age = time.time() - first_try
        if attempts >= retry.max_attempts or age >= retry.max_age:
            status = getattr(error, "status", None)
            await self._dead_letter(
                batch,
                "retries_exhausted",
                attempts,
                status,
                getattr(error, "body", None) or str(error),
                settled=settled,
            )
            return True
        self.metrics.sink_retried.labels(self.name).inc(len(batch))
        delay = max(self.backoff.delay(attempts), retry_after or 0.0)
        log.warning(
            "sink.send_failed",
            sink=self.name,
            events=len(batch),
            attempt=attempts,
            retry_in=round(delay, 3),
            error=str(error),
            status=getattr(error, "status", None),
            stage="sending",
        )
        if not await self._sleep_unless_stopping(delay):
            # Shutting down: the batch stays in the spool for the next start.
            return self._give_back(batch, settled)
        return None

    async def _wait_to_send(self, events: int) -> bool:
        """Wait out a pause and the rate limit; False if the sink is stopping meanwhile."""
        while (pause := self.resume_at - trio.current_time()) > 0:
            if not await self._sleep_unless_stopping(pause):
                return False
        if self.limiter is not None:
            await self.limiter.acquire(events)
        return True

    async def _sleep_unless_stopping(self, seconds: float) -> bool:
        """Sleep; False if a stop interrupts it and the queue is durable.

        A durable queue keeps its batches on disk, so a stopping sink gives up
        waiting at once; a memory buffer keeps delivering (with its waits)
        until the shutdown deadline, and what is left is written to disk.
        """
        if not self.queue.durable and self._parked is None:
            await trio.sleep(seconds)
            return True
        interrupt = self._interrupt
        with trio.move_on_after(seconds):
            await interrupt.wait()
        return not interrupt.is_set()

    # -- outcomes ----------------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        """The upstream asked to slow down: pause the sink and halve its concurrency."""
        resume_at = trio.current_time() + seconds
        if resume_at > self.resume_at:
            self.resume_at = resume_at
            log.warning("sink.paused", sink=self.name, seconds=round(seconds, 3))
        self.concurrency.total_tokens = max(1, self.concurrency.total_tokens // 2)
        self._successes = 0

    def _record_success(self, batch: Sequence[Entry], seconds: float) -> None:
        n = len(batch)
        self.failing_since = None
        self.last_error = None
        self.metrics.sink_delivered.labels(self.name).inc(n)
        self.metrics.sink_request_seconds.labels(self.name).observe(seconds)
        # Per event, from its enqueue time (kept across restarts and in Redis).
        self.metrics.sink_latency.observe(self.name, time.time(), [e.enqueued_at for e in batch])
        log.debug("sink.batch_sent", sink=self.name, events=n, ms=round(seconds * 1000, 2))
        if self.tap.active:
            self.tap.delivered(self, batch)
        # Additive increase: one more concurrent request per window of successes.
        limit = self.concurrency.total_tokens
        if limit < self.config.max_concurrency:
            self._successes += 1
            if self._successes >= limit:
                self.concurrency.total_tokens = limit + 1
                self._successes = 0

    def _record_failure(self, error: Exception) -> None:
        if self.failing_since is None:
            self.failing_since = time.time()
        self.last_error = str(error)[:200]

    async def _dead_letter(
        self,
        batch: Sequence[Entry],
        reason: str,
        attempts: int,
        status: int | None,
        response: str | None,
        *,
        settled: set[int],
    ) -> None:
        settled.update(map(id, batch))
        log.error(
            "sink.dead_lettered",
            sink=self.name,
            events=len(batch),
            reason=reason,
            attempts=attempts,
            status=status,
            event_id=batch[0].event_id,
            intentional=False,
            stage="sending",
        )
        # Counted once stored, and only what the queue moved: a Redis entry
        # another daemon dead-lettered or delivered meanwhile is not moved twice.
        moved = await self.queue.dead_letter(
            batch, reason=reason, attempts=attempts, status=status, response=response
        )
        self.metrics.sink_dead.labels(self.name, reason).inc(moved)
        if self.tap.active:
            self.tap.dead_lettered(self, batch, reason, status, response)


def _local_limiter(config: SinkConfig) -> OutboundLimiter | None:
    limit = config.rate_limit
    if limit is None:
        return None
    return OutboundLimiter(limit.requests_per_second, limit.events_per_second)


async def open_sink(plugin: str, sink: Sink) -> None:
    """``sink.open()``, a failure raised as the PluginError that names the plugin.

    :raises StorageError: as is: it already names the file and the fix (the file sink).
    """
    try:
        await sink.open()
    except StorageError:
        raise
    except Exception as exc:
        raise PluginError(
            plugin, f"{type(sink).__name__}.open", f"{type(exc).__name__}: {exc}"
        ) from exc
