"""The validated config as typed, frozen dataclasses, and the one place of every default.

A field's default here is what a config that leaves the key out gets: the
checker (:mod:`router.config.check`), the defaults the schema module lists,
the spool and Redis queue constructors and ``router config`` all read it
from these classes. Imports only the standard library and the credential
``repr`` of :mod:`router.config.secrets` (which imports only
:mod:`router.log`), so that the storage modules may import it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.config.secrets import SafeRepr

__all__ = [
    "AdminConfig",
    "AuthConfig",
    "BatchConfig",
    "InboundLimit",
    "LoggingConfig",
    "OutboundLimit",
    "RedisConfig",
    "RetryConfig",
    "RouteConfig",
    "RouterConfig",
    "ServerConfig",
    "SinkConfig",
    "SourceConfig",
    "SpoolConfig",
    "TapConfig",
    "field_default",
]

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str = "127.0.0.1:8080"
    workers: int = 1
    #: ``inline``: one process ingests and delivers; ``process``: ``buffer: disk``
    #: sinks are delivered by a second process sharing the spool (:mod:`router.roles`).
    delivery: str = "inline"
    max_body_bytes: int = MiB
    shutdown_timeout: float = 10.0
    data_dir: Path = Path("./data")
    access_log: bool = False
    #: Request bodies being read or processed at once, per process (docs/delivery.md).
    max_inflight_bytes: int = 16 * MiB
    #: Deepest nesting of arrays and objects a client's JSON body may have (400 beyond).
    max_json_depth: int = 64
    #: Request line plus headers, at most (431 beyond).
    max_header_bytes: int = 16 * 1024
    #: Open client connections at most; more wait in the listen backlog.
    max_connections: int = 1000
    #: Seconds a connection may go without a complete request head (idle or slow headers).
    keepalive_timeout: float = 5.0
    #: Seconds a request's whole body may take to arrive after its head (408 beyond).
    body_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True, repr=False)
class AuthConfig(SafeRepr):
    """A source's ``auth`` option. ``keys`` are compared with the ``header``'s value."""

    _hidden = frozenset({"keys", "options"})

    keys: tuple[str, ...]
    header: str | None
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class InboundLimit:
    """``rate`` per second with ``burst``, per value of ``key``, counting ``unit``.

    ``burst`` has no fixed default: the checker uses the rate, rounded, at least 1.
    """

    rate: float
    burst: int
    key: str = "remote_addr"
    unit: str = "requests"
    backend: str = "memory"
    on_backend_error: str = "fail_open"


@dataclass(frozen=True, slots=True, repr=False)
class SourceConfig(SafeRepr):
    """A source. ``on_invalid``'s default is the plugin's (``Source.default_on_invalid``)."""

    _hidden = frozenset({"options"})

    name: str
    plugin: str
    auth: AuthConfig | None
    prefix: str = ""
    paths: Mapping[str, str] = field(default_factory=dict)
    on_invalid: str = "reject"
    rate_limit: InboundLimit | None = None
    #: Every option of the source, core and plugin ones, as written.
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_events: int = 100
    max_bytes: int = MiB
    max_wait: float = 0.2


@dataclass(frozen=True, slots=True)
class RetryConfig:
    max_attempts: int = 20
    max_age: float = 86400.0
    initial_backoff: float = 0.2
    max_backoff: float = 60.0


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    max_events: int = 1_000_000
    max_bytes: int = 1 << 30
    when_full: str = "block"
    #: Pending events a durable queue keeps in memory: hot window, or one page in.
    memory_bytes: int = 16 * MiB


@dataclass(frozen=True, slots=True)
class OutboundLimit:
    requests_per_second: float | None = None
    events_per_second: float | None = None
    backend: str = "memory"
    on_backend_error: str = "fail_open"


@dataclass(frozen=True, slots=True, repr=False)
class SinkConfig(SafeRepr):
    """A sink. A plugin's ``Sink.delivery_defaults`` override these defaults."""

    _hidden = frozenset({"options"})

    name: str
    plugin: str
    batch: BatchConfig = field(default_factory=BatchConfig)
    max_concurrency: int = 4
    timeout: float = 10.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    rate_limit: OutboundLimit | None = None
    buffer: str = "disk"
    spool: SpoolConfig = field(default_factory=SpoolConfig)
    dedup_window: float | None = None
    failing_after: float = 60.0
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Bytes of batches a sink has taken from its queue at once, across max_concurrency.
    max_inflight_bytes: int = 16 * MiB


@dataclass(frozen=True, slots=True)
class TapConfig:
    """``admin.tap``: what ``router tap`` shows of the events (docs/operations.md)."""

    #: Dotted paths in the canonical event whose values are masked; in the vendor
    #: form, every key named as a path's last part. The default: what identifies
    #: a person across sites, and Endu's own names for two of them.
    mask: tuple[str, ...] = (
        "identity.fingerprint",
        "identity.platform_ids",
        "identity.wallet",
        "context.device.advertising_id",
        "context.device.user_agent",
        "p_user_id",
        "blockchain",
    )


@dataclass(frozen=True, slots=True, repr=False)
class AdminConfig(SafeRepr):
    """The admin listener (docs/operations.md): never the ingest port."""

    _hidden = frozenset({"token"})

    #: ``HOST:PORT``, ``unix:PATH``, or ``off`` for no admin listener.
    bind: str = "127.0.0.1:9091"
    #: When set, every admin request needs ``Authorization: Bearer <token>``.
    token: str | None = None
    tap: TapConfig = field(default_factory=TapConfig)

    @property
    def enabled(self) -> bool:
        return self.bind != "off"

    @classmethod
    def of(cls, section: Mapping[str, Any]) -> AdminConfig:
        """The settings of a validated ``admin`` section."""
        given = dict(section)
        tap = given.pop("tap", None) or {}
        return cls(**given, tap=TapConfig(tuple(tap["mask"])) if "mask" in tap else TapConfig())


@dataclass(frozen=True, slots=True, repr=False)
class RedisConfig(SafeRepr):
    """The top-level ``redis`` section, shared by every Redis feature (see docs/scaling.md)."""

    #: ``redis://``/``rediss://`` (one node), ``redis+sentinel://h:p[,h:p]/service``,
    #: ``redis+cluster://h:p[,h:p]``.
    url: str
    #: First part of every key: ``{<prefix>:<sink>}:stream``, ``{<prefix>:rl:<source>}:<key>``.
    prefix: str = "router"
    #: This daemon's consumer name in each sink's group (default: host + data dir).
    consumer: str | None = None
    #: Entries another daemon took and left unacknowledged this long are claimed.
    claim_idle: float = 30.0
    connect_timeout: float = 2.0
    command_timeout: float = 5.0
    #: How often the shared queue length (``full()``, gauges) is read from Redis.
    refresh_interval: float = 0.5
    reconnect_initial_backoff: float = 0.1
    reconnect_max_backoff: float = 5.0
    #: Keep at most about this many dead letters per sink (``None``: all of them).
    dead_letters_max: int | None = None
    max_connections: int = 64


@dataclass(frozen=True, slots=True)
class RouteConfig:
    sources: tuple[str, ...]
    sinks: tuple[str, ...]
    types: frozenset[str] | None = None
    match: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, repr=False)
class RouterConfig(SafeRepr):
    """The whole validated config. Built by :func:`router.config.load_config`."""

    _hidden = frozenset({"plugins", "secrets"})

    file: str
    server: ServerConfig = field(default_factory=ServerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)
    sinks: Mapping[str, SinkConfig] = field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()
    plugins: Mapping[str, Any] = field(default_factory=dict)
    #: The shared Redis of ``buffer: redis`` sinks and ``backend: redis`` limits.
    redis: RedisConfig | None = None
    admin: AdminConfig = field(default_factory=AdminConfig)
    #: Every credential in the config, for log redaction.
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        """The validated ``plugins.<name>`` section (``{}`` if absent)."""
        return self.plugins.get(name) or {}

    def summary(self) -> str:
        return f"{len(self.sources)} sources, {len(self.sinks)} sinks, {len(self.routes)} routes"


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``cls``.

    For classes with required fields, which cannot be built empty to read one.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            if f.default is dataclasses.MISSING:
                raise LookupError(f"{cls.__name__}.{name} has no default")
            return f.default
    raise LookupError(f"{cls.__name__} has no field {name!r}")
