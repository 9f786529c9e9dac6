"""The runtime graph: sources, sinks, routes, queues, limiters and the ingest table.

:func:`build_topology` is the one place that turns a validated config and a
registry into running parts. The result is immutable: the HTTP app and the
delivery runners are given a Topology and never change it. To change the
config of a running router, build a second Topology beside the first with
``previous=`` and swap it in: every sink, source and limiter whose config did
not change is carried over as the very same object, and every sink keeps its
queue (queues belong to :class:`~router.resources.Resources`, not to a
topology), so nothing pending moves.

::

    RouterConfig + Registry + Resources
        └── build_topology()
              ├── SinkNode per sink:     Sink, SinkRunner, SinkTarget, its queue
              ├── SourceRuntime per source: Source, Routes to SinkTargets, limiter
              └── IngestRoutes:          (method, path) → source and route
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import structlog

from router.config import InboundLimit, RouterConfig, SinkConfig, SourceConfig
from router.delivery import SinkRunner
from router.errors import PluginError
from router.ingest import SourceRuntime
from router.ingestroutes import IngestRoutes
from router.queue import SinkQueue
from router.ratelimit import InboundLimiter, LocalLimiter, SinkLimiter
from router.registry import Registry
from router.resources import Resources
from router.routing import Route, SinkTarget
from router.sink import Sink

__all__ = ["SinkNode", "Topology", "build_topology"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class SinkNode:
    """One configured sink: the plugin's Sink, the runner delivering its queue, and its target."""

    config: SinkConfig
    sink: Sink
    queue: SinkQueue
    #: One per queue for the life of the process: a reload reconfigures it.
    runner: SinkRunner
    #: The sink as ingest sees it: encoder, validators, queue.
    target: SinkTarget
    #: A shared (Redis) outbound limit, or None (the runner keeps a local one).
    limiter: SinkLimiter | None = None
    #: Whether this process runs the runner: False for a ``buffer: disk`` sink in
    #: the ingest process of ``server.delivery: process`` (:mod:`router.roles`).
    delivered: bool = True


@dataclass(frozen=True, slots=True)
class Topology:
    """Everything a config makes run, built by :func:`build_topology`; never changed after."""

    config: RouterConfig
    sinks: Mapping[str, SinkNode]
    sources: Mapping[str, SourceRuntime]
    #: What the HTTP front end dispatches ingest requests with.
    ingest: IngestRoutes
    #: Runners delivering what former workers left in their spools (``--workers``).
    drains: tuple[SinkRunner, ...] = ()

    @property
    def runners(self) -> Mapping[str, SinkRunner]:
        """The runners this process runs (every sink's but those another process delivers)."""
        return {name: node.runner for name, node in self.sinks.items() if node.delivered}

    @property
    def queues(self) -> Mapping[str, SinkQueue]:
        return {name: node.queue for name, node in self.sinks.items()}


def build_topology(
    config: RouterConfig,
    registry: Registry,
    resources: Resources,
    *,
    previous: Topology | None = None,
    runners: Mapping[str, SinkRunner] | None = None,
    drains: Sequence[Mapping[str, SinkQueue]] = (),
) -> Topology:
    """The topology of ``config``, on the queues ``resources`` opened for its sinks.

    With ``previous``, whatever did not change is carried over from it as it is:
    a sink with the same config keeps its node (Sink, runner, connection
    pool); a sink whose config changed gets a new Sink, and its node names the
    same queue and runner, which the caller reconfigures when it swaps the
    topology in; a source keeps its runtime if neither it nor its routes
    changed, and its limiter if its limit did not. ``runners`` are every
    runner the process has, by sink, including those of sinks a reload
    removed: a sink that comes back gets its runner again. Building changes
    nothing that runs. ``drains`` are queues of former workers' spools,
    delivered by runners of their own.

    :raises PluginError: a plugin's Sink or Source could not be constructed.
    """
    runners = runners or {}
    sinks = {
        name: _sink_node(cfg, registry, resources, previous, runners.get(name))
        for name, cfg in config.sinks.items()
    }
    sources = {
        name: _source_runtime(cfg, config, registry, resources, sinks, previous)
        for name, cfg in config.sources.items()
    }
    drain_runners = tuple(
        SinkRunner(
            config.sinks[name],
            make_sink(config.sinks[name], registry, resources),
            queue,
            resources.metrics,
            tap=resources.tap,
            release=resources.release_sink,
        )
        for queues in drains
        for name, queue in queues.items()
        if name in config.sinks
    )
    return Topology(
        config=config,
        sinks=MappingProxyType(sinks),
        sources=MappingProxyType(sources),
        ingest=IngestRoutes.of(sources.values()),
        drains=drain_runners,
    )


def make_sink(cfg: SinkConfig, registry: Registry, resources: Resources) -> Sink:
    """A new instance of the sink's plugin class, with its own connection pool.

    :raises PluginError: the plugin's constructor raised (named, with the error).
    """
    cls = registry.sinks[cfg.plugin]
    codec = registry.codecs.get(cls.vendor) if cls.vendor else None
    try:
        sink = cls(cfg.name, cfg.options, client=resources.http_client(cfg), codec=codec)
    except Exception as exc:
        raise PluginError(cfg.plugin, f"{cls.__name__}()", f"{type(exc).__name__}: {exc}") from exc
    sink.data_dir = resources.data_dir
    return sink


def _sink_node(
    cfg: SinkConfig,
    registry: Registry,
    resources: Resources,
    previous: Topology | None,
    runner: SinkRunner | None,
) -> SinkNode:
    old = previous.sinks.get(cfg.name) if previous is not None else None
    if old is not None and old.config == cfg:
        return old
    if runner is None and old is not None:
        runner = old.runner
    queue = resources.queues[cfg.name]
    limiter = _sink_limiter(cfg, resources)
    if runner is not None and runner.config == cfg:
        sink = runner.sink  # a removed sink brought back as it was
    else:
        sink = make_sink(cfg, registry, resources)
    delivered = resources.delivers(cfg)
    if runner is None:
        runner = SinkRunner(
            cfg,
            sink,
            queue,
            resources.metrics,
            limiter=limiter,
            tap=resources.tap,
            release=resources.release_sink,
        )
        if delivered:  # the queue's figures are the delivering process's to report
            resources.metrics.watch_sink(cfg.name, runner.statistics)
    target = SinkTarget(cfg.name, sink, queue, registry.validators, when_full=cfg.spool.when_full)
    return SinkNode(cfg, sink, queue, runner, target, limiter, delivered)


def _source_runtime(
    cfg: SourceConfig,
    config: RouterConfig,
    registry: Registry,
    resources: Resources,
    sinks: Mapping[str, SinkNode],
    previous: Topology | None,
) -> SourceRuntime:
    route_configs = [route for route in config.routes if cfg.name in route.sources]
    routes = [Route(route, [sinks[s].target for s in route.sinks]) for route in route_configs]
    old = previous.sources.get(cfg.name) if previous is not None else None
    if (
        old is not None
        and old.config == cfg
        and old.max_json_depth == config.server.max_json_depth
        and _same_routes(old.routes, routes)
    ):
        return old
    if not routes:
        log.warning(
            "source.unrouted",
            source=cfg.name,
            message="no route uses this source: its events are accepted and "
            "counted in router_events_unrouted_total, nothing else",
        )
    cls = registry.sources[cfg.plugin]
    if old is not None and old.config == cfg:
        source = old.source
    else:
        try:
            source = cls(cfg.name, cfg.options, quarantine=resources.quarantine)
        except Exception as exc:
            raise PluginError(
                cfg.plugin, f"{cls.__name__}()", f"{type(exc).__name__}: {exc}"
            ) from exc
    if old is not None and old.config.rate_limit == cfg.rate_limit:
        limiter = old.limiter
    else:
        limiter = _source_limiter(cfg.name, cfg.rate_limit, resources)
    return SourceRuntime(
        cfg,
        source,
        registry.codecs[cls.vendor],
        registry.validators,
        routes,
        resources.quarantine,
        resources.metrics,
        limiter,
        max_json_depth=config.server.max_json_depth,
        tap=resources.tap,
    )


def _same_routes(old: Sequence[Route], new: Sequence[Route]) -> bool:
    """Whether two lists of routes filter the same way and go to the very same targets."""
    return len(old) == len(new) and all(
        a.config == b.config
        and len(a.targets) == len(b.targets)
        and all(x is y for x, y in zip(a.targets, b.targets, strict=True))
        for a, b in zip(old, new, strict=True)
    )


def _source_limiter(
    source: str, limit: InboundLimit | None, resources: Resources
) -> InboundLimiter | None:
    if limit is None:
        return None
    if limit.backend != "redis":
        return LocalLimiter(limit.rate, limit.burst)
    from router.redislimit import RedisLimiter

    return RedisLimiter(
        resources.redis_link(),
        source,
        limit.rate,
        limit.burst,
        on_backend_error=limit.on_backend_error,
        metrics=resources.metrics,
    )


def _sink_limiter(cfg: SinkConfig, resources: Resources) -> SinkLimiter | None:
    """A Redis limit for ``backend: redis``; None lets the runner keep a local one."""
    limit = cfg.rate_limit
    if limit is None or limit.backend != "redis":
        return None
    from router.redislimit import RedisOutboundLimiter

    return RedisOutboundLimiter(
        resources.redis_link(),
        cfg.name,
        limit.requests_per_second,
        limit.events_per_second,
        on_backend_error=limit.on_backend_error,
        metrics=resources.metrics,
    )
