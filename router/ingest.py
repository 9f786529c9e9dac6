"""The ingest pipeline: one HTTP request in a vendor's format to stored events.

For each request to a source route, in order: credential header (401/403),
JSON (400), the source's envelope (400), credentials in the body (401/403),
rate limit (429), validation of every event (400 or quarantine), decoding to
canonical events, routing and encoding per sink, capacity (503 or drop), and
one durable write per sink — group-committed with other requests — before
the client gets its 2xx. Every error is rendered by the source in its
vendor's shape, with the rate-limit headers.

Exceptions from plugin code are contained at the plugin boundary: a Source
method that raises gives a 500 in the vendor's shape; a codec that raises on
one event quarantines (on decode) or dead-letters (on encode) that event.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import structlog

from router import jsonbody
from router.errors import (
    FieldError,
    Forbidden,
    IngestError,
    InternalError,
    PluginFailure,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from router.event import new_event_ids, now_ms
from router.ingeststore import FULL_RETRY_AFTER, store
from router.routing import Encoded, Route, SinkTarget
from router.source import Envelope, IngestRequest, IngestResult, Reply
from router.tap import IDLE, TapHub

if TYPE_CHECKING:
    from router.codec import Codec
    from router.config import SourceConfig
    from router.metrics import Metrics
    from router.quarantine import Quarantine
    from router.source import Source
    from router.validation import Validators

__all__ = ["FULL_RETRY_AFTER", "PluginFailure", "SourceRuntime"]

log = structlog.get_logger()
T = TypeVar("T")

#: At most this many field errors are spelled out in one 400 message.
MAX_ERRORS_IN_MESSAGE = 20


class SourceRuntime:
    """One configured source: its Source instance, codec, limits and routes."""

    def __init__(
        self,
        config: SourceConfig,
        source: Source,
        codec: Codec,
        validators: Validators,
        routes: Sequence[Route],
        quarantine: Quarantine,
        metrics: Metrics,
        limiter: Any | None = None,
        *,
        max_json_depth: int = 64,
        tap: TapHub = IDLE,
    ):
        self.config = config
        self.name = config.name
        self.source = source
        self.codec = codec
        self.vendor = codec.vendor
        self.validators = validators
        self.routes = tuple(routes)
        self.quarantine = quarantine
        self.metrics = metrics
        self.limiter = limiter
        self.max_json_depth = max_json_depth
        self.tap = tap
        self._body_credential = source.auth_style == "body"
        #: Every sink of this source's routes, by name, in route order.
        targets: dict[str, SinkTarget] = {}
        for route in self.routes:
            for target in route.targets:
                targets.setdefault(target.name, target)
        unfiltered = all(route.unfiltered for route in self.routes)
        #: Sinks that take this source's events as received (same vendor, no translation).
        self._as_is = {name for name, t in targets.items() if t.takes_as_is(self.vendor)}
        #: Decoding is needed unless every sink takes the events as is and no route filters.
        self._decode = bool(set(targets) - self._as_is) or not unfiltered
        #: With no route filtering, every event goes to the same sinks: these;
        #: None when some route filters.
        self._every_event_to = tuple(targets.values()) if unfiltered else None

    # -- the pipeline ------------------------------------------------------------

    async def handle(self, request: IngestRequest) -> Reply:
        """Answer one ingest request. Never raises for bad input or plugin bugs."""
        limit_headers: dict[str, str] = {}
        try:
            if not self._body_credential:
                self.check_credential(request)
            body = self._parse(request.body)
            if self._body_credential:
                # The key is in the body: it can be read only once the JSON is parsed.
                self.check_credential(request, body)
            envelope = self._plugin("split", self.source.split, request, body)
            if not isinstance(envelope, Envelope):
                raise PluginFailure(
                    f"split returned {type(envelope).__name__}, not Envelope",
                    source=self.name,
                    plugin=self.vendor,
                    hook="split",
                )
            self._plugin("authorize", self.source.authorize, request, envelope)
            if self.limiter is not None:
                limit_headers = await self._rate_limit(request, envelope, body)
            result = await self._accept(request, envelope)
            reply = self._plugin("accepted", self.source.accepted, request, result)
        except IngestError as exc:
            # The exception may be a plugin's, raised again for the next request:
            # the rate-limit headers go on this reply, never into it.
            reply = self.error_reply(request, exc, limit_headers)
            if self.tap.active:
                self.tap.rejected(self.name, request.body, exc)
        except PluginFailure as exc:
            self._log_plugin_error(request, exc.hook, str(exc))
            if self.tap.active:
                self.tap.rejected(self.name, request.body, exc)
            reply = self.error_reply(
                request,
                InternalError(f"the {self.vendor} plugin failed while handling the request"),
                limit_headers,
            )
        if limit_headers:
            reply.headers = {**limit_headers, **reply.headers}
        return reply

    def error_reply(
        self, request: IngestRequest, error: IngestError, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """The source's rendering of an error; a plain JSON body if the plugin fails at it.

        The reply's headers: ``headers``, then ``error.headers``, then the
        source's own, each overriding the one before. ``error`` gets this
        source and request as its ``source`` and ``request_id``.
        """
        error.source = self.name
        error.request_id = request.request_id
        try:
            reply = self.source.error(request, error)
        except Exception as exc:  # the plugin's error renderer itself is broken
            self._log_plugin_error(request, "error", repr(exc))
            reply = Reply(error.status, {"error": error.title, "message": error.message})
        reply.headers = {**(headers or {}), **error.headers, **reply.headers}
        return reply

    def _log_plugin_error(self, request: IngestRequest, hook: str | None, error: str) -> None:
        log.error(
            "ingest.plugin_error",
            source=self.name,
            plugin=self.vendor,
            hook=hook,
            request_id=request.request_id,
            error=error,
            stage="receiving",
        )

    def _plugin(self, method: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except IngestError:
            raise
        except Exception as exc:
            raise PluginFailure(
                f"{type(self.source).__name__}.{method} raised {type(exc).__name__}: {exc}",
                source=self.name,
                plugin=self.vendor,
                hook=method,
            ) from exc

    def check_credential(self, request: IngestRequest, *body: Any) -> None:
        """Check ``auth.keys`` against the credential (401 missing, 403 wrong).

        ``body``: the parsed JSON body, given for the ``body`` style only.
        """
        auth = self.config.auth
        if auth is None or not auth.keys:
            return
        given = self._plugin("credential", self.source.credential, request, *body)
        where = self._plugin("credential_hint", self.source.credential_hint)
        if not given:
            raise Unauthorized(f"missing credential: send it in {where}")
        given_bytes = given.encode()
        # Compare with every key so timing does not tell which one is closest.
        matched = False
        for key in auth.keys:
            matched |= hmac.compare_digest(given_bytes, key.encode())
        if not matched:
            raise Forbidden(f"invalid credential in {where}")

    def _parse(self, body: bytes) -> Any:
        return jsonbody.loads(body, self.max_json_depth)

    async def _rate_limit(
        self, request: IngestRequest, envelope: Envelope, body: Any
    ) -> dict[str, str]:
        limit = self.config.rate_limit
        key = self._limit_key(limit.key, request, envelope, body)
        cost = len(envelope.events) if limit.unit == "events" else 1
        decision = await self.limiter.check(f"{self.name}:{key}", cost)
        headers = decision.headers()
        if not decision.allowed:
            self.metrics.events_rejected.labels(self.name, "rate_limited").inc(len(envelope.events))
            raise RateLimited(
                f"rate limit of {limit.rate:g} {limit.unit}/s exceeded; "
                f"retry in {headers['Retry-After']} s",
                headers=headers,
            )
        return headers

    def _limit_key(self, key: str, request: IngestRequest, envelope: Envelope, body: Any) -> str:
        if key == "remote_addr":
            return request.remote_addr
        if key == "credential":
            given = (body,) if self._body_credential else ()
            return self._plugin("credential", self.source.credential, request, *given) or ""
        if key.startswith("header:"):
            return request.headers.get(key[7:].lower(), "")
        value = self._plugin("rate_limit_key", self.source.rate_limit_key, key, request, envelope)
        return "" if value is None else str(value)

    async def _accept(self, request: IngestRequest, envelope: Envelope) -> IngestResult:
        raws = envelope.events
        n = len(raws)
        self.metrics.events_received.labels(self.name).inc(n)
        failed = self.validators.check_all(self.vendor, self.codec.event_type, raws)
        if failed and self.config.on_invalid == "reject":
            self.metrics.events_rejected.labels(self.name, "invalid").inc(n)
            raise ValidationFailed(
                self._message(failed, self.source.events_field_of(request.route)),
                errors=[(i, e) for i, es in failed.items() for e in es],
            )

        received = now_ms()
        fresh = new_event_ids(n - len(failed))
        if not failed and not self._decode:
            # The usual request: every event valid, stored as received.
            ids: list[str | None] = list(fresh)
            events: list[tuple[str, Any, Any]] = list(zip(fresh, raws, repeat(None)))
        else:
            ids, events = self._events(raws, failed, iter(fresh), received, envelope.meta)

        puts, dead, dumped = self._route(events)
        await store(self, puts, dead, failed, raws, received)
        if self.tap.active:
            self.tap.ingested(self, envelope, events, failed, dead, received)
        accepted = len(events)
        self.metrics.events_accepted.labels(self.name).inc(accepted)
        if failed:
            self.metrics.events_rejected.labels(self.name, "quarantined").inc(len(failed))
        # Index-aligned with the envelope only when no event failed.
        return IngestResult(envelope, ids, failed, dumped if not failed else None)

    def _events(
        self,
        raws: Sequence[Any],
        failed: dict[int, list[FieldError]],
        fresh: Iterator[str],
        received: int,
        meta: Mapping[str, Any],
    ) -> tuple[list[str | None], list[tuple[str, Any, Any]]]:
        """Each event's id (None if it failed) and ``(id, raw, canonical event or None)``
        of those that did not; an event whose decoding raises joins ``failed``."""
        ids: list[str | None] = [None] * len(raws)
        events: list[tuple[str, Any, Any]] = []
        for i, raw in enumerate(raws):
            if i in failed:
                continue
            if not self._decode:
                ids[i] = event_id = next(fresh)
                events.append((event_id, raw, None))
                continue
            try:
                event = self.codec.decode(raw, id=next(fresh), received_at=received, meta=meta)
            except Exception as exc:  # a codec bug quarantines the event, not the request
                log.error(
                    "ingest.decode_failed",
                    source=self.name,
                    plugin=self.vendor,
                    index=i,
                    error=repr(exc),
                    stage="processing",
                )
                failed[i] = [FieldError((), f"{self.vendor} codec could not decode: {exc!r}")]
                continue
            event.source = self.name
            ids[i] = event.id
            events.append((event.id, raw, event))
        return ids, events

    def _message(self, failed: dict[int, list[FieldError]], events_field: str | None) -> str:
        parts = []
        for i, errors in failed.items():
            prefix = f"{events_field}[{i}]" if events_field else ""
            for error in errors:
                field = error.field
                where = f"{prefix}.{field}" if prefix and field else (prefix or field)
                parts.append(f"{where}: {error.message}" if where else error.message)
        more = len(parts) - MAX_ERRORS_IN_MESSAGE
        text = "; ".join(parts[:MAX_ERRORS_IN_MESSAGE])
        return text + (f"; and {more} more" if more > 0 else "")

    def _route(
        self, events: list[tuple[str, Any, Any]]
    ) -> tuple[
        dict[SinkTarget, list[tuple[str, bytes]]],
        dict[SinkTarget, list[tuple[str, bytes, str, str]]],
        list[bytes] | None,
    ]:
        """Each sink's encoded events, its untranslatable ones ``(id, payload, reason,
        code)``, and the events as received (``orjson.dumps``, aligned with
        ``events``) if some sink takes them so.

        Counts nothing per sink: the request may still be refused (:meth:`_store`).
        """
        if self._every_event_to is not None and events:
            return self._route_unfiltered(events, self._every_event_to)
        puts: dict[SinkTarget, list[tuple[str, bytes]]] = {}
        dead: dict[SinkTarget, list[tuple[str, bytes, str, str]]] = {}
        unrouted = 0
        for event_id, raw, event in events:
            seen: set[str] = set()
            for route in self.routes:
                # Without an event (nothing to translate), no route has a filter.
                if event is not None and not route.matches(event):
                    continue
                for target in route.targets:
                    if target.name in seen:
                        continue
                    seen.add(target.name)
                    if target.name in self._as_is:
                        # Same vendor: the round-trip guarantee makes translation a no-op.
                        puts.setdefault(target, []).append((event_id, orjson.dumps(raw)))
                        continue
                    self._encode(target, event, puts, dead)
            if not seen:
                unrouted += 1
        self._count_unrouted(unrouted)
        return puts, dead, None

    def _route_unfiltered(
        self, events: list[tuple[str, Any, Any]], targets: tuple[SinkTarget, ...]
    ) -> tuple[
        dict[SinkTarget, list[tuple[str, bytes]]],
        dict[SinkTarget, list[tuple[str, bytes, str, str]]],
        list[bytes] | None,
    ]:
        """:meth:`_route` when every event goes to the same sinks: one pass per sink."""
        puts: dict[SinkTarget, list[tuple[str, bytes]]] = {}
        dead: dict[SinkTarget, list[tuple[str, bytes, str, str]]] = {}
        dumped = None
        for target in targets:
            if target.name in self._as_is:
                if dumped is None:
                    dumped = [orjson.dumps(raw) for _, raw, _ in events]
                puts[target] = list(zip([e[0] for e in events], dumped, strict=True))
            else:
                for _, _, event in events:
                    self._encode(target, event, puts, dead)
        if not targets:
            self._count_unrouted(len(events))
        return puts, dead, dumped

    def _encode(
        self,
        target: SinkTarget,
        event: Any,
        puts: dict[SinkTarget, list[tuple[str, bytes]]],
        dead: dict[SinkTarget, list[tuple[str, bytes, str, str]]],
    ) -> None:
        """Translate one canonical event for ``target``: into ``puts``, or ``dead`` if it cannot."""
        outcome = target.encode(event)
        if isinstance(outcome, Encoded):
            puts.setdefault(target, []).append((event.id, outcome.payload))
            return
        log.warning(
            "ingest.untranslatable",
            source=self.name,
            sink=target.name,
            event_id=event.id,
            reason=outcome.reason,
            stage="processing",
        )
        dead.setdefault(target, []).append(
            (event.id, _dead_letter_json(event.to_dict()), outcome.reason, outcome.code)
        )

    def _count_unrouted(self, unrouted: int) -> None:
        if unrouted:
            # No route's filter matched: dropped on purpose by configuration, and counted.
            self.metrics.events_unrouted.labels(self.name).inc(unrouted)
            log.debug(
                "events.dropped",
                source=self.name,
                count=unrouted,
                reason="unrouted",
                intentional=True,
            )


def _dead_letter_json(event: dict[str, Any]) -> bytes:
    """The event as JSON for its dead letter, even when orjson refuses it.

    A codec may turn valid input into what orjson cannot write (an integer
    beyond 64 bits from a string of digits); that is why encoding failed, and
    the dead letter must still be written rather than the request get a 500.
    """
    try:
        return orjson.dumps(event)
    except TypeError:
        return json.dumps(event, default=repr, ensure_ascii=False).encode()
