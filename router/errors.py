"""Every exception the router raises on purpose.

::

    RouterError
    ├── ConfigError          the config is wrong; lists every problem with file, line, key
    ├── PluginError          a plugin failed to import or raised in a startup hook
    ├── PluginFailure        a Source method raised while handling a request: a 500 in the
    │                        vendor's shape (never leaves the ingest pipeline)
    ├── DataDirLocked        another daemon holds the data directory
    ├── UsageError           a command-line argument is wrong (bad --bind, unreadable input file)
    │   ├── UnknownVendor        ``router translate`` was given a vendor no plugin provides
    │   └── UnknownSink          ``router dlq`` was given a sink the spool does not know
    ├── ListenError          the daemon cannot listen on its address (port in use, unknown host)
    ├── StorageError         events could not be stored or read (disk full, Redis down…): 503
    │   └── StorageUnusable      a data directory or database file cannot be used at all;
    │                            names the file and what to do (``router run`` exits 2)
    ├── IngestError          a request cannot be accepted; rendered in the vendor's error shape;
    │                        carries ``source`` and ``request_id`` once the pipeline renders it
    │   ├── BadRequest           400: malformed JSON or envelope
    │   │   ├── ValidationFailed 400: events failed their schema (carries FieldErrors)
    │   │   └── NestingTooDeep   400: valid JSON nested deeper than server.max_json_depth
    │   ├── Unauthorized         401: no credential
    │   ├── Forbidden            403: wrong credential
    │   ├── NotFound             404
    │   ├── MethodNotAllowed     405
    │   ├── RequestTimeout       408: the body did not arrive within server.body_timeout
    │   ├── PayloadTooLarge      413
    │   ├── HeadersTooLarge      431: request line and headers beyond server.max_header_bytes
    │   ├── RateLimited          429 (+ X-RateLimit-*, Retry-After)
    │   ├── InternalError        500: a plugin raised while handling the request
    │   └── Overloaded           503 (+ Retry-After): a spool is full
    ├── Untranslatable       an event cannot become a valid event of the destination vendor
    └── SinkError            delivery failed
        ├── SinkUnavailable      retryable: connection error, timeout, 408, 429, 5xx
        └── SinkRejected         permanent: any other 4xx; the events are dead-lettered
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BadRequest",
    "ConfigError",
    "ConfigProblem",
    "DataDirLocked",
    "FieldError",
    "Forbidden",
    "HeadersTooLarge",
    "IngestError",
    "InternalError",
    "ListenError",
    "MethodNotAllowed",
    "NestingTooDeep",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PluginError",
    "PluginFailure",
    "RateLimited",
    "RequestTimeout",
    "RouterError",
    "SinkError",
    "SinkRejected",
    "SinkUnavailable",
    "StorageError",
    "StorageUnusable",
    "Unauthorized",
    "UnknownSink",
    "UnknownVendor",
    "Untranslatable",
    "UsageError",
    "ValidationFailed",
]


class RouterError(Exception):
    """Base class of the router's own errors."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config file."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(RouterError):
    """The config is invalid. ``problems`` lists each one; ``str()`` prints one per line."""

    def __init__(self, problems: Sequence[ConfigProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class PluginError(RouterError):
    """A plugin could not be loaded or failed at startup."""

    def __init__(self, plugin: str, hook: str | None, message: str):
        self.plugin = plugin
        self.hook = hook
        where = f"plugin {plugin!r}" + (f" in hook {hook}" if hook else "")
        super().__init__(f"{where}: {message}")


class PluginFailure(RouterError):
    """A Source method raised something other than an IngestError, or returned the wrong type.

    ``source`` is the configured source, ``plugin`` its vendor and ``hook``
    the Source method (``split``, ``authorize``…). The pipeline logs it and
    answers a 500 in the vendor's shape.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        plugin: str | None = None,
        hook: str | None = None,
    ):
        super().__init__(message)
        self.source = source
        self.plugin = plugin
        self.hook = hook


class DataDirLocked(RouterError):
    """Another router process is using the data directory."""


class UsageError(RouterError):
    """A command-line argument is wrong; the message says what to give instead."""


class UnknownVendor(UsageError, LookupError):
    """No codec is registered under that vendor name."""


class UnknownSink(UsageError, LookupError):
    """The spool has no sink of that name; the message lists the sinks it has."""


class ListenError(RouterError):
    """The daemon cannot listen on its bind address (``server.bind`` or ``--bind``)."""


class StorageError(RouterError):
    """Events could not be stored or read: the spool, the quarantine or Redis failed."""

    #: True if the store has logged this failure already (once per change of
    #: state), so a request that meets it need not log it again.
    reported = False


class StorageUnusable(StorageError):
    """A data directory or database file cannot be used; the message names it and the fix.

    ``path`` is the file or directory at fault.
    """

    def __init__(self, path: object, message: str):
        self.path = str(path)
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field that failed validation. ``path`` is relative to the event."""

    path: tuple[str | int, ...]
    message: str

    @property
    def field(self) -> str:
        """The path as ``items[0].id``."""
        out = ""
        for part in self.path:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else part
        return out

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.path else self.message


class IngestError(RouterError):
    """A request the router refuses. Sources render it in their vendor's error shape.

    ``status`` is the HTTP status, ``headers`` must be sent with the response,
    and ``errors`` names the failing fields, each with ``index``, the position
    of its event in the request (``None`` for a request-level problem).
    ``source`` and ``request_id`` name the source and request it was answered
    for; the pipeline sets them just before the source renders the error.
    """

    status = 500
    title = "Internal Server Error"
    #: The configured source that answered with this error; None until rendered.
    source: str | None = None
    #: The request's ``X-Request-Id`` (or the id generated for it); None until rendered.
    request_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[tuple[int | None, FieldError]] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = list(errors)
        self.headers = dict(headers or {})


class BadRequest(IngestError):
    status = 400
    title = "Bad Request"


class ValidationFailed(BadRequest):
    """Events failed their vendor's schema. ``message`` names index and field."""


class NestingTooDeep(BadRequest):
    """Valid JSON whose arrays and objects nest deeper than ``server.max_json_depth``."""


class Unauthorized(IngestError):
    status = 401
    title = "Unauthorized"


class Forbidden(IngestError):
    status = 403
    title = "Forbidden"


class NotFound(IngestError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(IngestError):
    status = 405
    title = "Method Not Allowed"


class RequestTimeout(IngestError):
    """The request body did not arrive within ``server.body_timeout``."""

    status = 408
    title = "Request Timeout"


class PayloadTooLarge(IngestError):
    status = 413
    title = "Payload Too Large"


class HeadersTooLarge(IngestError):
    """The request line and headers exceed ``server.max_header_bytes``."""

    status = 431
    title = "Request Header Fields Too Large"


class RateLimited(IngestError):
    status = 429
    title = "Too Many Requests"


class InternalError(IngestError):
    status = 500
    title = "Internal Server Error"


class Overloaded(IngestError):
    status = 503
    title = "Service Unavailable"


class Untranslatable(RouterError):
    """An event cannot be expressed as a valid event of the destination vendor.

    Raised by ``Codec.encode``; the core dead-letters the event with this reason.
    """

    def __init__(self, vendor: str, reason: str, *, field: str | None = None):
        self.vendor = vendor
        self.reason = reason
        self.field = field
        super().__init__(f"{vendor}: {reason}")


class SinkError(RouterError):
    """Delivery of a batch failed. ``status``/``body`` are the upstream's reply, if any."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class SinkUnavailable(SinkError):
    """Temporary failure: retry later, no sooner than ``retry_after`` seconds if given.

    ``pause`` is true when the upstream asked the whole sink to slow down
    (429 or 503), not just this request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after

    @property
    def pause(self) -> bool:
        return self.status in (429, 503)


class SinkRejected(SinkError):
    """Permanent failure: the upstream refused these events (4xx other than 408/429)."""
