"""What a plugin provides to deliver: a :class:`Sink` subclass per vendor API.

The core owns everything around ``send``: the spool, batching, concurrency,
rate limits, retries with backoff, pausing on 429/503 and dead letters. An HTTP Sink
only turns a batch of encoded events into one upstream call
(:meth:`Sink.build_request`); the default :meth:`Sink.send` posts it and maps
the answer: returning is delivered, :class:`SinkUnavailable` is try again,
:class:`SinkRejected` is never try again. A sink that is not HTTP (the
``file`` sink) overrides ``send`` instead.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import httpx

from router import outbound
from router.codec import resolve_type
from router.errors import SinkRejected, SinkUnavailable
from router.event import EVENT_TYPES

if TYPE_CHECKING:
    from pathlib import Path

    from router.codec import Codec
    from router.event import Event

__all__ = [
    "URL_OPTION",
    "Sink",
    "SinkRequest",
    "check_response",
    "parse_rate_limit_reset",
    "parse_retry_after",
]

#: How much of an upstream error body is kept for logs and dead letters.
MAX_BODY_KEPT = 2048

_URL = re.compile(r"https?://[^/?#\s]+(/[^?#\s]*)?")


def _check_url(field: str, value: Any, error: Any) -> None:
    if isinstance(value, str) and not _URL.fullmatch(value):
        error(
            field,
            # The value is not repeated: a query string may hold a key.
            "must be an http:// or https:// URL with a host and an optional path, and no "
            "query, fragment or spaces, such as https://api.example.com/v1",
        )


#: The ``url`` option of an HTTP sink: http(s), a host, an optional path; no
#: query or fragment, since sinks append their API's path to it.
URL_OPTION: Mapping[str, Any] = {"type": "string", "required": True, "check_with": _check_url}


class SinkRequest(NamedTuple):
    """One upstream call, as :meth:`Sink.build_request` returns it."""

    url: str
    body: bytes
    headers: dict[str, str]


class Sink:
    """Base class for one destination API. One instance per configured sink.

    ``encode`` runs at ingest, once per event, and must not block; ``send``
    runs in the sink's delivery tasks, up to ``max_concurrency`` at once.
    """

    #: The name configs use in ``sinks.<name>.plugin`` (usually the plugin name).
    kind: ClassVar[str]
    #: The codec that encodes events for this sink, or ``None`` for canonical JSON.
    vendor: ClassVar[str | None] = None
    #: Cerberus schema of the sink's own options (``url``, ``api_key``…).
    options_schema: ClassVar[Mapping[str, Any]] = {}
    #: The most events the upstream takes in one call; ``1`` for single-event APIs.
    #: The core never hands ``send`` more: the config caps ``batch.max_events``
    #: at it and the default ``send`` refuses a larger batch.
    max_batch_events: ClassVar[int | None] = None
    #: Defaults for the core's delivery options (``batch``, ``max_concurrency``…)
    #: that suit this API; the config overrides them.
    delivery_defaults: ClassVar[Mapping[str, Any]] = {}
    #: The daemon's (or this worker's) data directory, set before ``open()``;
    #: relative file paths in options resolve under it.
    data_dir: Path | None = None

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        client: outbound.ConnectionPool | httpx.AsyncClient,
        codec: Codec | None = None,
    ):
        self.name = name
        self.options = options
        #: What :meth:`post` sends through: the core gives the sink's
        #: ConnectionPool; tests may give an httpx client (a MockTransport…).
        self._transport = client
        self.codec = codec
        #: Where every request goes and the headers it carries (:meth:`request`).
        self.url = self.request_url(options)
        self.headers = self.request_headers(options)

    @property
    def transport(self) -> outbound.ConnectionPool | httpx.AsyncClient:
        """What :meth:`post` sends through: the core's pool, or a client set since."""
        return self._transport

    @property
    def client(self) -> httpx.AsyncClient:
        """An httpx client for a plugin's own calls beyond :meth:`post`, with the
        sink's limits and timeout; made on first use and closed with the pool."""
        if isinstance(self._transport, outbound.ConnectionPool):
            return self._transport.httpx_client()
        return self._transport

    @client.setter
    def client(self, client: httpx.AsyncClient) -> None:
        # A sink that sets its own client (as it could before) has post() use it.
        self._transport = client

    def request_url(self, options: Mapping[str, Any]) -> str:
        """The URL every request goes to, from the options; default: the ``url`` option."""
        return options.get("url", "")

    def request_headers(self, options: Mapping[str, Any]) -> dict[str, str]:
        """The headers of every request (credentials…), from the options; default: JSON."""
        return {"content-type": "application/json"}

    def request(self, body: bytes) -> SinkRequest:
        """The request posting ``body`` to :attr:`url` with :attr:`headers`."""
        return SinkRequest(self.url, body, dict(self.headers))

    def encode(self, event: Event) -> dict[str, Any]:
        """One event as this sink's payload. Raise ``Untranslatable`` if impossible.

        Without a codec the payload is the canonical event, with its type
        renamed by the ``type_map`` option where that has an entry for it.
        """
        if self.codec is None:
            mapped = resolve_type(self.options.get("type_map"), event.type, default=event.type)
            if mapped != event.type:
                # A copy: the same event goes to every sink a route names.
                event = dataclasses.replace(event, type=mapped, custom=mapped not in EVENT_TYPES)
            return event.to_dict()
        return self.codec.encode(event, self.options)

    async def open(self) -> None:
        """Prepare to send (open files, check credentials). Called once before ``send``."""

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        """The one upstream call that delivers ``batch`` (encoded events, at most
        ``max_batch_events``). HTTP sinks implement this; it must not block."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement build_request(batch) or override send(batch)"
        )

    async def send(self, batch: Sequence[bytes]) -> None:
        """Deliver a batch of encoded events (each a JSON document as bytes).

        Default: POST :meth:`build_request` with :meth:`post`; every failure is
        :class:`SinkUnavailable` or :class:`SinkRejected` (see :func:`check_response`).
        """
        limit = self.max_batch_events
        if not batch or (limit is not None and len(batch) > limit):
            # The config caps batch.max_events, so this is a bug in the caller.
            takes = "one event" if limit == 1 else f"1 to {limit or 'any number of'} events"
            raise ValueError(f"sink {self.name!r} takes {takes} per request, got {len(batch)}")
        url, body, headers = self.build_request(batch)
        await self.post(url, content=body, headers=headers)

    async def aclose(self) -> None:
        """Release resources. Called once, after the last ``send`` returned."""

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None
    ) -> outbound.Response | httpx.Response:
        """POST ``content`` and map every failure to SinkUnavailable or SinkRejected."""
        try:
            response = await self._transport.post(url, content=content, headers=headers)
        except (outbound.OutboundTimeout, httpx.TimeoutException) as exc:
            raise SinkUnavailable(f"timeout: {type(exc).__name__}") from exc
        except (outbound.OutboundError, httpx.TransportError) as exc:
            raise SinkUnavailable(f"connection failed: {type(exc).__name__}: {exc}") from exc
        check_response(response)
        return response


def check_response(response: outbound.Response | httpx.Response) -> None:
    """Raise if the upstream did not accept the request; return on 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = response.text[:MAX_BODY_KEPT]
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None and status == 429:
            retry_after = parse_rate_limit_reset(response.headers.get("x-ratelimit-reset"))
        raise SinkUnavailable(
            f"upstream answered {status}", status=status, body=body, retry_after=retry_after
        )
    raise SinkRejected(f"upstream answered {status}", status=status, body=body)


def parse_rate_limit_reset(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``X-RateLimit-Reset``: a Unix time, or seconds if small."""
    try:
        reset = float(value) if value else None
    except ValueError:
        return None
    if reset is None:
        return None
    # Values below a year in seconds are deltas (some APIs send those); larger ones epochs.
    if reset < 365 * 86400:
        return max(0.0, reset)
    return max(0.0, reset - (time.time() if now is None else now))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
