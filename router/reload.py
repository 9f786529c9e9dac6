"""Changing the config of a running router: what changed, what needs a restart, the history.

The reload itself is :meth:`router.daemon.Daemon.reload`; this module holds
what it decides with and what it reports:

- :func:`compare` lists the sources, sinks and routes a new config adds,
  removes or changes, and the settings that only a restart can apply;
- :func:`applicable` is the new config with those settings kept as they run;
- :class:`ReloadHistory` keeps the last reloads, logs each one, and counts
  ``router_config_reloads_total{result}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from router.config import RouteConfig, RouterConfig, SinkConfig

__all__ = [
    "LIVE_SERVER_SETTINGS",
    "Changes",
    "Reload",
    "ReloadHistory",
    "applicable",
    "compare",
    "config_hash",
    "unappliable",
]

log = structlog.get_logger()

#: ``server`` settings a reload applies; every other one is fixed when the
#: listener and the HTTP front end are made, so changing it needs a restart.
LIVE_SERVER_SETTINGS = frozenset({"shutdown_timeout", "max_json_depth"})

#: How many reloads :class:`ReloadHistory` keeps.
HISTORY = 20


@dataclass(frozen=True, slots=True)
class Changes:
    """What a new config changes, by name; routes are named ``"from -> to"``."""

    added: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    removed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    changed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Dotted keys whose new value is not applied until the router restarts.
    restart_required: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to apply (restart-only changes are still reported)."""
        return not any(
            names for part in (self.added, self.removed, self.changed) for names in part.values()
        )

    def to_dict(self) -> dict[str, Any]:
        parts = {"added": self.added, "removed": self.removed, "changed": self.changed}
        out: dict[str, Any] = {
            verb: {kind: list(names) for kind, names in part.items() if names}
            for verb, part in parts.items()
        }
        out["restart_required"] = list(self.restart_required)
        return out


def _named(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    added = tuple(sorted(set(new) - set(old)))
    removed = tuple(sorted(set(old) - set(new)))
    changed = tuple(sorted(n for n in set(old) & set(new) if old[n] != new[n]))
    return added, removed, changed


def _route_name(route: RouteConfig) -> str:
    return f"{','.join(route.sources)} -> {','.join(route.sinks)}"


def _routes(routes: Iterable[RouteConfig]) -> dict[str, list[RouteConfig]]:
    named: dict[str, list[RouteConfig]] = {}
    for route in routes:
        named.setdefault(_route_name(route), []).append(route)
    return named


def compare(old: RouterConfig, new: RouterConfig) -> Changes:
    """What applying ``new`` over the running ``old`` changes, and what it cannot.

    A sink's queue settings (``buffer``, ``dedup_window``, ``spool`` limits)
    are reported as needing a restart: a reload keeps the queue as it is.
    """
    sources = _named(old.sources, new.sources)
    sinks = _named(old.sinks, new.sinks)
    routes = _named(_routes(old.routes), _routes(new.routes))
    restart = [
        f"server.{f.name}"
        for f in dataclasses.fields(old.server)
        if f.name not in LIVE_SERVER_SETTINGS
        and getattr(old.server, f.name) != getattr(new.server, f.name)
    ]
    for key in ("logging", "redis", "plugins"):
        if getattr(old, key) != getattr(new, key):
            restart.append(key)
    if old.admin.bind != new.admin.bind:
        restart.append("admin.bind")
    for name in sorted(set(old.sinks) & set(new.sinks)):
        restart += [
            f"sinks.{name}.{key}"
            for key, value in _queue_settings(old.sinks[name]).items()
            if _queue_settings(new.sinks[name])[key] != value
        ]
    kinds = {"sources": sources, "sinks": sinks, "routes": routes}
    settings = [
        f"server.{name}"
        for name in sorted(LIVE_SERVER_SETTINGS)
        if getattr(old.server, name) != getattr(new.server, name)
    ]
    if old.admin.token != new.admin.token:
        settings.append("admin.token")
    if old.admin.tap != new.admin.tap:
        settings.append("admin.tap")
    return Changes(
        added={kind: parts[0] for kind, parts in kinds.items()},
        removed={kind: parts[1] for kind, parts in kinds.items()},
        changed={**{kind: parts[2] for kind, parts in kinds.items()}, "settings": tuple(settings)},
        restart_required=tuple(restart),
    )


def _queue_settings(sink: SinkConfig) -> dict[str, Any]:
    """A sink's settings that belong to its queue, which a reload keeps as it is."""
    return {
        "buffer": sink.buffer,
        "dedup_window": sink.dedup_window,
        "spool.max_events": sink.spool.max_events,
        "spool.max_bytes": sink.spool.max_bytes,
        "spool.memory_bytes": sink.spool.memory_bytes,
    }


def applicable(old: RouterConfig, new: RouterConfig) -> RouterConfig:
    """``new``, with every setting only a restart can apply kept at its running value."""
    server = dataclasses.replace(
        old.server, **{name: getattr(new.server, name) for name in LIVE_SERVER_SETTINGS}
    )
    return dataclasses.replace(
        new,
        server=server,
        logging=old.logging,
        redis=old.redis,
        plugins=old.plugins,
        # The admin listener stays where it is; its token changes at once.
        admin=dataclasses.replace(new.admin, bind=old.admin.bind),
        # Redaction only ever learns secrets: a line may still quote an old one.
        secrets=old.secrets | new.secrets,
    )


def unappliable(config: RouterConfig) -> list[str]:
    """Why a config :func:`applicable` made cannot run as it is: one line each, or none.

    A sink or limit that needs Redis when the running router has no Redis
    link: the ``redis`` section is set at start, so it needs a restart.
    """
    if config.redis is not None:
        return []
    users = [f"sinks.{name}" for name, sink in config.sinks.items() if sink.buffer == "redis"]
    users += [
        f"sinks.{name}.rate_limit"
        for name, sink in config.sinks.items()
        if sink.rate_limit is not None and sink.rate_limit.backend == "redis"
    ]
    users += [
        f"sources.{name}.rate_limit"
        for name, source in config.sources.items()
        if source.rate_limit is not None and source.rate_limit.backend == "redis"
    ]
    return [
        f"{key} needs Redis, and the running router has none: a redis section takes "
        "effect on restart"
        for key in users
    ]


def config_hash(config: RouterConfig) -> str:
    """The SHA-256 of the config file as read (``"-"`` if it cannot be read now)."""
    try:
        return hashlib.sha256(Path(config.file).read_bytes()).hexdigest()[:16]
    except OSError:
        return "-"


@dataclass(frozen=True, slots=True)
class Reload:
    """One reload: when, why, its result (``applied``, ``unchanged`` or ``rejected``)."""

    at: float
    trigger: str
    result: str
    config_hash: str
    changes: Changes | None = None
    #: Why a rejected config was rejected, one line each (secrets redacted).
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "trigger": self.trigger,
            "result": self.result,
            "config_hash": self.config_hash,
            "changes": self.changes.to_dict() if self.changes is not None else None,
            "problems": list(self.problems),
        }


class ReloadHistory:
    """The last :data:`HISTORY` reloads, each logged and counted as it is recorded."""

    def __init__(self, registry: CollectorRegistry, size: int = HISTORY):
        self._reloads: deque[Reload] = deque(maxlen=size)
        self._counter = Counter(
            "router_config_reloads",
            "Config reloads, by result (applied, unchanged, rejected)",
            ["result"],
            registry=registry,
        )
        for result in ("applied", "unchanged", "rejected"):
            self._counter.labels(result)

    def record(
        self,
        trigger: str,
        result: str,
        config_hash: str,
        *,
        changes: Changes | None = None,
        problems: Iterable[str] = (),
    ) -> Reload:
        entry = Reload(time.time(), trigger, result, config_hash, changes, tuple(problems))
        self._reloads.append(entry)
        self._counter.labels(result).inc()
        fields = {"trigger": trigger, "config_hash": config_hash}
        if result == "rejected":
            log.error("config.reload_rejected", problems=list(entry.problems), **fields)
        else:
            detail = changes.to_dict() if changes is not None else {}
            log.info(f"config.reload_{result}", **detail, **fields)
            if changes is not None and changes.restart_required:
                log.warning(
                    "config.restart_required",
                    settings=list(changes.restart_required),
                    message="these settings keep their running values until the router "
                    "restarts; the rest of the config was applied",
                )
        return entry

    def __iter__(self):
        return iter(self._reloads)

    def to_list(self) -> list[dict[str, Any]]:
        """The reloads kept, oldest first, as JSON-ready dicts."""
        return [entry.to_dict() for entry in self._reloads]
