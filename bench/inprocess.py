"""The daemon's own path, in process, without HTTP: ingest and delivery apart.

Run from the repo root::

    python -m bench.inprocess [--requests 2000] [--repeat 5]

A daemon (``router.testing.daemon.running_daemon``) with a Conscent source
and a Conscent sink, fed Conscent 100-event batches straight into
``SourceRuntime.handle``, so neither hypercorn nor a load generator shares
the figures. Rows, in CPU µs per event (best of ``--repeat``):

* ``ingest, no store``: validation, ids, routing and the 201 body, with the
  spool write left out (the main thread's CPU time);
* ``ingest``: the same with the durable write and its group commit, 32
  requests at once (the process's CPU time, so the writer thread counts);
* ``delivery``: draining those events to a fake upstream in another
  process (the daemon process's CPU time).

The collector is set as ``router run`` sets it (``router.gcpolicy``).
``calls/event`` is the number of Python function calls per event in the
same work under ``cProfile``: unlike time, it does not move with the
machine's other load, so it shows a change in per-event work on a busy day.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from bench import payloads
from router import ingest
from router.gcpolicy import tune_for_serving
from router.log import configure_logging
from router.source import IngestRequest
from router.testing.daemon import RunningDaemon, running_daemon

EVENTS_PER_REQUEST = 100
CONCURRENT = 32


def config(port: int) -> str:
    return f"""
logging: {{level: error, format: json}}
sources:
  conscent: {{plugin: conscent, auth: none}}
sinks:
  out:
    plugin: conscent
    url: "http://127.0.0.1:{port}/"
    api_key: bench
    # Nothing listens while ingest is measured: a retry every half second keeps the
    # runner's attempts out of the ingest figures, and delivery starts within 0.5 s.
    retry: {{initial_backoff: 0.5, max_backoff: 0.5, max_attempts: 1000000}}
routes: [{{from: conscent, to: out}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Measure:
    """CPU seconds of a piece of work: ``clock`` is ``time.thread_time`` or ``process_time``."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.best = float("inf")
        self.calls = 0
        self.calls_events = 1

    async def time(self, work: Callable[[], Awaitable[None]]) -> None:
        start = self.clock()
        await work()
        self.best = min(self.best, self.clock() - start)

    async def count_calls(self, work: Callable[[], Awaitable[None]], events: int) -> None:
        self.calls_events = events
        profile = cProfile.Profile()
        profile.enable()
        await work()
        profile.disable()
        self.calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]


def request(body: bytes) -> IngestRequest:
    return IngestRequest(
        method="POST",
        path="/collect/event",
        headers={"content-type": "application/json"},
        body=body,
    )


async def ingest_requests(rd: RunningDaemon, body: bytes, n: int, concurrent: int) -> None:
    runtime = rd.source("conscent")

    async def client(count: int) -> None:
        for _ in range(count):
            reply = await runtime.handle(request(body))
            assert reply.status == 201, reply.body

    async with trio.open_nursery() as nursery:
        for i in range(concurrent):
            nursery.start_soon(client, n // concurrent + (i < n % concurrent))


async def measure(requests: int, repeat: int) -> list[tuple[str, float, float]]:
    """``(what, CPU µs per event, Python calls per event)`` per row."""
    body = payloads.conscent_batch(EVENTS_PER_REQUEST)
    events = requests * EVENTS_PER_REQUEST
    rows: list[tuple[str, Measure, int]] = []
    port = free_port()  # nothing listens yet: the events stay queued until delivery's turn
    with tempfile.TemporaryDirectory(prefix="router-inprocess-") as tmp:
        async with running_daemon(config(port), data_dir=Path(tmp) / "d") as rd:
            store = ingest.store

            async def no_store(*args: object, **kwargs: object) -> None:
                return None

            no_store_cpu = Measure(time.thread_time)
            ingest.store = no_store  # type: ignore[assignment]
            try:
                for _ in range(repeat):
                    await no_store_cpu.time(lambda: ingest_requests(rd, body, requests, 1))
                await no_store_cpu.count_calls(
                    lambda: ingest_requests(rd, body, requests, 1), events
                )
            finally:
                ingest.store = store
            rows.append(("ingest, no store", no_store_cpu, events))

            ingest_cpu = Measure(time.process_time)
            # Stored for real: every round adds to the queue delivery drains below.
            for _ in range(repeat):
                await ingest_cpu.time(lambda: ingest_requests(rd, body, requests, CONCURRENT))
            await ingest_cpu.count_calls(
                lambda: ingest_requests(rd, body, requests, CONCURRENT), events
            )
            rows.append(("ingest", ingest_cpu, events))

            queue = rd.queue("out")
            queued = queue.pending_events
            upstream = await trio.lowlevel.open_process(
                [sys.executable, "-m", "router.testing.upstream", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                drain = Measure(time.process_time)

                async def drain_some(count: int) -> None:
                    goal = queue.pending_events - count
                    while queue.pending_events > max(goal, 0):  # noqa: ASYNC110 - no event to wait on
                        await trio.sleep(0.002)

                # The first requests wait for the upstream to listen and the sink to retry.
                await drain_some(events // 2)
                per_round = (queued - events // 2) // (repeat + 1)
                for _ in range(repeat):
                    await drain.time(lambda: drain_some(per_round))
                rest = queue.pending_events
                await drain.count_calls(lambda: drain_some(rest), rest)
                rows.append(("delivery", drain, per_round))
            finally:
                upstream.terminate()
                await upstream.wait()
    return [(name, 1e6 * m.best / n, m.calls / m.calls_events) for name, m, n in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best counts")
    args = parser.parse_args(argv)
    configure_logging("error", "json")
    tune_for_serving()  # as router run does
    rows = trio.run(measure, args.requests, args.repeat)
    print(f"{'what':<18} {'CPU µs/event':>12} {'calls/event':>12}")
    for name, cpu, calls in rows:
        print(f"{name:<18} {cpu:>12.2f} {calls:>12.1f}")


if __name__ == "__main__":
    main()
