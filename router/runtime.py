"""What runs now: the topology served, every sink's runner, and swapping a new topology in.

The daemon owns one :class:`Runtime` for its process. A runner belongs to
its queue for the life of the process: a reload that changes a sink
reconfigures the runner in place, one that removes a sink parks it (its
queue keeps what is pending), and one that brings the sink back unparks it.
So no two runners ever take batches from one queue, and a queue is never
closed before shutdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from router.app import AppHost, serve_topology
from router.delivery import SinkRunner, open_sink
from router.fastpath import IngestDispatcher
from router.resources import Resources
from router.topology import Topology

if TYPE_CHECKING:
    from router.sink import Sink

__all__ = ["Runtime"]


class Runtime:
    """The served topology and the runners delivering its sinks' queues."""

    def __init__(self, resources: Resources, dispatcher: IngestDispatcher, host: AppHost):
        self.resources = resources
        self.dispatcher = dispatcher
        self.host = host
        #: What is served: read by each request as it starts.
        self.topology: Topology | None = None
        #: Every sink's runner, kept while the process runs (a removed sink's is parked).
        self.runners: dict[str, SinkRunner] = {}
        self._running: set[SinkRunner] = set()
        self._nursery: trio.Nursery | None = None

    async def start(self, topology: Topology, nursery: trio.Nursery) -> None:
        """Start every runner of ``topology`` (and its drains) in ``nursery``, then serve it."""
        self._nursery = nursery
        self.runners = {name: node.runner for name, node in topology.sinks.items()}
        # topology.runners: those of the sinks this process delivers (router.roles).
        for runner in (*topology.runners.values(), *topology.drains):
            await nursery.start(self._deliver, runner)
        self._serve(topology)

    async def switch(self, topology: Topology) -> None:
        """Serve ``topology`` instead of the current one, losing nothing.

        New sinks' runners start first and changed ones are reconfigured; then
        requests that start from now on use ``topology`` (those in flight
        finish on the old one, whose targets share the same queues); then the
        runners of sinks it no longer has are parked.

        :raises PluginError, StorageError: a new Sink's ``open`` failed; nothing was changed.
        """
        old = self.topology
        assert old is not None and self._nursery is not None, "start() first"
        await self._open_new_sinks(topology)
        for name, node in topology.sinks.items():
            runner = node.runner
            self.runners[name] = runner
            if not node.delivered:
                continue
            if runner not in self._running:
                await self._nursery.start(self._deliver, runner)
            elif runner.sink is not node.sink or runner.config != node.config:
                runner.reconfigure(node.config, node.sink, node.limiter)
            runner.unpark()
        self._serve(topology)
        for name, node in old.sinks.items():
            if name not in topology.sinks:
                node.runner.park()

    def stop(self) -> None:
        """Stop every runner: in-flight batches finish, then each closes its sink."""
        for runner in list(self._running):
            runner.stop()

    def orphaned(self) -> dict[str, int]:
        """Queues no sink of the served config uses, with their pending events."""
        used = self.topology.sinks if self.topology is not None else {}
        return {
            name: queue.pending_events
            for name, queue in self.resources.queues.items()
            # A queue another process delivers is that process's to report.
            if name not in used and self.resources.hands_out(name)
        }

    def _serve(self, topology: Topology) -> None:
        serve_topology(self.dispatcher, self.host, topology)
        self.topology = topology

    async def _open_new_sinks(self, topology: Topology) -> None:
        """Open each new Sink a running runner is to take over; close them all if one fails."""
        opened: list[Sink] = []
        for node in topology.sinks.values():
            runner = node.runner
            if node.delivered and runner in self._running and runner.sink is not node.sink:
                try:
                    await open_sink(node.config.plugin, node.sink)
                except BaseException:
                    with trio.CancelScope(shield=True):
                        for sink in opened:
                            await sink.aclose()
                        # The new sinks that did not open too: none will be used.
                        for other in topology.sinks.values():
                            if other.sink is not other.runner.sink:
                                await self.resources.release_sink(other.sink)
                    raise
                opened.append(node.sink)

    async def _deliver(
        self, runner: SinkRunner, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._running.add(runner)
        try:
            await runner.run(task_status=task_status)
        finally:
            self._running.discard(runner)
