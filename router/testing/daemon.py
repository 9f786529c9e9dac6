"""A daemon running in the test's own Trio loop, on a random loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
import yaml

from router.config import RouterConfig, load_config
from router.daemon import Daemon
from router.delivery import SinkRunner
from router.errors import ConfigError
from router.ingest import SourceRuntime
from router.loader import apply_overrides, config_reader
from router.pluginmanager import make_plugin_manager
from router.queue import SinkQueue
from router.registry import Registry, build_registry
from router.storage import lock_data_dir
from router.topology import Topology
from router.yamlsource import load_yaml

__all__ = ["RunningDaemon", "build_config", "running_daemon"]


def build_config(
    config: Mapping[str, Any] | str,
    *,
    plugins: Iterable[tuple[str, Any]] = (),
    autoload: bool = False,
    env: Mapping[str, str] | None = None,
    file: str = "<test>",
) -> tuple[RouterConfig, Registry]:
    """A validated config and its registry from a dict or YAML text (raises ConfigError)."""
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
    loaded = load_yaml(text, file, env or {})
    if loaded.data is None:
        raise ConfigError(loaded.problems)
    registry = build_registry(make_plugin_manager(autoload=autoload, extra=plugins))
    return load_config(loaded, registry), registry


@dataclass
class RunningDaemon:
    daemon: Daemon
    url: str
    client: httpx.AsyncClient

    @property
    def metrics(self):
        return self.daemon.metrics

    @property
    def admin_url(self) -> str:
        """The admin listener's base URL (it is on ``127.0.0.1:0`` in tests)."""
        assert self.daemon.admin_url is not None, "the admin listener is on"
        return self.daemon.admin_url

    @property
    def topology(self) -> Topology:
        """What the daemon serves now."""
        assert self.daemon.topology is not None, "the daemon is running"
        return self.daemon.topology

    def queue(self, sink: str) -> SinkQueue:
        return self.topology.sinks[sink].queue

    def runner(self, sink: str) -> SinkRunner:
        return self.topology.sinks[sink].runner

    def source(self, source: str) -> SourceRuntime:
        return self.topology.sources[source]

    def metric(self, name: str, **labels: str) -> float:
        return self.daemon.metrics.value(name, **labels)

    def reconcile(self, sink: str) -> dict[str, float]:
        """Counter totals for one sink; ``balance`` is 0 when nothing was lost.

        With ``buffer: redis`` and several daemons, ``pending`` is the shared
        stream's and the other counters are this daemon's: the balance holds
        over the sum of every daemon's counters (see docs/scaling.md).
        """
        m = self.metric
        # Through the resources: a sink a reload removed keeps its queue there.
        queue = self.daemon.resources.queues[sink]
        totals = {
            "recovered": m("router_sink_events_recovered_total", sink=sink),
            "accepted": m("router_sink_events_accepted_total", sink=sink),
            "replayed": m("router_sink_events_replayed_total", sink=sink),
            "stored_unacknowledged": m("router_sink_events_stored_unacknowledged_total", sink=sink),
            "delivered": m("router_sink_events_delivered_total", sink=sink),
            "dead_lettered": self._all_reasons("router_sink_events_dead_lettered", sink),
            "dropped": self._all_reasons("router_sink_events_dropped", sink),
            "pending": queue.pending_events,
        }
        totals["balance"] = (
            totals["recovered"]
            + totals["accepted"]
            + totals["replayed"]
            + totals["stored_unacknowledged"]
            - totals["delivered"]
            - totals["dead_lettered"]
            - totals["dropped"]
            - totals["pending"]
        )
        return totals

    def _all_reasons(self, metric_name: str, sink: str) -> float:
        """A counter with a ``reason`` label, summed over its reasons for one sink."""
        return sum(
            sample.value
            for metric in self.daemon.metrics.registry.collect()
            if metric.name == metric_name
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("sink") == sink
        )

    def stop(self) -> None:
        self.daemon.stop()


@asynccontextmanager
async def running_daemon(
    config: Mapping[str, Any] | str | RouterConfig | Path,
    *,
    data_dir: Path,
    plugins: Iterable[tuple[str, Any]] = (),
    autoload: bool = False,
    env: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> AsyncIterator[RunningDaemon]:
    """Start a daemon bound to ``127.0.0.1:0``; stop it gracefully on exit.

    ``config`` is a dict, YAML text, a prebuilt RouterConfig (with its
    ``registry``) or the Path of a config file, which ``daemon.reload()``
    then reads again.
    """
    read_config = None
    # Port 0 for the admin listener too: tests run many daemons at once.
    overrides = {
        "server": {"bind": "127.0.0.1:0", "data_dir": Path(data_dir)},
        "admin": {"bind": "127.0.0.1:0"},
    }
    if isinstance(config, RouterConfig):
        assert registry is not None, "pass the registry with a prebuilt config"
    elif isinstance(config, Path):
        path = config
        config, registry = build_config(
            path.read_text(), plugins=plugins, autoload=autoload, env=env, file=str(path)
        )
        read_config = config_reader(str(path), overrides)
    else:
        config, registry = build_config(config, plugins=plugins, autoload=autoload, env=env)
    config = apply_overrides(config, overrides)
    daemon = Daemon(config, registry, read_config=read_config)
    with lock_data_dir(daemon.data_dir):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(daemon.run)
            async with httpx.AsyncClient(base_url=binds[0], timeout=30) as client:
                try:
                    yield RunningDaemon(daemon, binds[0], client)
                finally:
                    daemon.stop()
