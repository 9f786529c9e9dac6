"""Taps: copies of the events passing a source, a route or a sink, for ``router tap``.

The daemon has one :class:`TapHub` (``Resources.tap``). Ingest and delivery
call it only behind ``if hub.active:``, one attribute test per request or
batch, so with no tap attached nothing is copied, filtered or buffered.

Each attached :class:`Tap` has a :class:`TapFilter` and a bounded memory
channel. Publishing puts references to what passed (the event, the raw
payload, the reason) on the channel with ``send_nowait``; a full channel
counts the item as dropped by that tap and nothing waits, so a slow reader
never slows ingest or delivery. Rendering a line (the form, masking,
redaction, JSON) happens in the reader's task: :func:`stream`.

Every line says what it hides: ``masked`` lists the paths of the line whose
value was masked (``admin.tap.mask``) or had a configured secret redacted.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import trio

from router.event import now_ms
from router.log import Redactor

if TYPE_CHECKING:
    from router.event import Event

__all__ = [
    "FORMS",
    "IDLE",
    "KINDS",
    "MASKED",
    "POINTS",
    "Tap",
    "TapFilter",
    "TapHub",
    "TapQueryError",
    "parse_query",
    "route_name",
    "stream",
]

#: What a masked value becomes.
MASKED = "[masked]"
POINTS = ("source", "route", "sink")
FORMS = ("canonical", "vendor")
KINDS = ("accepted", "rejected", "quarantined", "routed", "delivered", "dead_lettered")
#: Items a tap holds for its reader; past that, it drops and counts.
CAPACITY = 1024
#: How often, at most, a stream says how many items its tap dropped.
DROP_REPORT_INTERVAL = 1.0
#: Lines rendered and written at once: one write per line would make a busy
#: daemon's tap slow, and more at once would hold the loop up longer.
LINES_PER_WRITE = 64
#: A rejected request's body is shown up to this many bytes when it is not JSON…
MAX_TEXT_BODY = 4096
#: …and only its first MAX_TEXT_BODY bytes (as text) when it is larger than this.
MAX_REJECTED_BODY = 64 << 10


@dataclass(frozen=True, slots=True)
class TapFilter:
    """What a tap sees: one point (or all), one canonical type (or all), a sample."""

    #: ``source``, ``route``, ``sink``, or None for every point.
    point: str | None = None
    #: The source's or sink's name, or the route's ``from -> to`` name.
    name: str | None = None
    #: For a route: the route's config (routes have no names of their own).
    route: Any = None
    #: Only events of this canonical type (lines with no canonical event are left out).
    type: str | None = None
    #: The fraction of events kept, at random.
    sample: float = 1.0

    def at(self, point: str, name: str) -> bool:
        return self.point is None or (self.point == point and self.name == name)


class Seen:
    """One thing that passed a point, as references; rendered only by the reader."""

    __slots__ = ("at", "decode", "detail", "event", "event_id", "kind", "name", "point", "raw")

    def __init__(
        self,
        point: str,
        name: str,
        kind: str,
        *,
        event_id: str | None = None,
        event: Event | None = None,
        raw: Any = None,
        decode: Callable[[], Event] | None = None,
        detail: dict[str, Any] | None = None,
    ):
        self.point = point
        self.name = name
        self.kind = kind
        self.at = now_ms()
        self.event_id = event_id
        self.event = event
        #: The vendor form: a document, or bytes of JSON (a sink's payload).
        self.raw = raw
        #: Makes the canonical event when ``event`` is None (a source that skips decoding).
        self.decode = decode
        #: ``reason``, ``status``, ``sinks``…: added to the line as they are.
        self.detail = detail


class Tap:
    """One attached reader: its filter, its channel and what it dropped."""

    def __init__(self, filter: TapFilter, capacity: int = CAPACITY):
        self.filter = filter
        self._send, self.receive = trio.open_memory_channel[Seen](capacity)
        #: Items that found the channel full, since attached.
        self.dropped = 0

    def offer(self, seen: Seen) -> None:
        try:
            self._send.send_nowait(seen)
        except trio.WouldBlock:
            self.dropped += 1
        except trio.ClosedResourceError:
            pass

    def close(self) -> None:
        """No more items; the reader still gets those already buffered."""
        self._send.close()

    def sampled(self) -> bool:
        sample = self.filter.sample
        return sample >= 1.0 or random.random() < sample

    def wants(self, event: Event | None) -> bool:
        """Whether to keep an event, by type (decided later when unknown) and sample."""
        want = self.filter.type
        if want is not None and event is not None and event.type != want:
            return False
        return self.sampled()


class TappedSource(Protocol):
    """What publishing reads from the source an ingest request came to."""

    name: str
    codec: Any
    routes: Sequence[Any]


class TappedSink(Protocol):
    """What publishing reads from the sink a batch went to."""

    name: str
    sink: Any


class TapHub:
    """Every tap attached to one daemon process; :attr:`active` while there is one."""

    def __init__(self) -> None:
        self.taps: list[Tap] = []
        #: The one test call sites make: False means there is nothing to do.
        self.active = False

    def attach(self, filter: TapFilter, capacity: int = CAPACITY) -> Tap:
        tap = Tap(filter, capacity)
        self.taps.append(tap)
        self.active = True
        return tap

    def detach(self, tap: Tap) -> None:
        """Stop publishing to ``tap`` and free what it buffered."""
        self._remove(tap)
        tap.receive.close()

    def close(self) -> None:
        """End every tap's stream once its reader has what was buffered (a shutdown)."""
        for tap in list(self.taps):
            self._remove(tap)

    def _remove(self, tap: Tap) -> None:
        if tap in self.taps:
            self.taps.remove(tap)
        tap.close()
        self.active = bool(self.taps)

    def buffered(self) -> int:
        """Items waiting in every tap's channel."""
        return sum(tap.receive.statistics().current_buffer_used for tap in self.taps)

    # -- publishing: called only when active -------------------------------------------

    def rejected(self, source: str, body: bytes, error: Exception) -> None:
        """A whole request refused (401, 400, 429…): its body and why."""
        detail: dict[str, Any] = {"reason": str(getattr(error, "message", None) or error)}
        status = getattr(error, "status", None)
        if status is not None:
            detail["status"] = status
        if len(body) > MAX_REJECTED_BODY:
            # A tap's buffer holds references: a whole large body in each would be too much.
            body, detail["body_bytes"] = body[:MAX_TEXT_BODY], len(body)
        for tap in self.taps:
            if tap.filter.at("source", source) and tap.filter.type is None and tap.sampled():
                tap.offer(Seen("source", source, "rejected", raw=body, detail=detail))

    def ingested(
        self,
        source: TappedSource,
        envelope: Any,
        events: Sequence[tuple[str, Any, Event | None]],
        failed: Mapping[int, Sequence[Any]],
        dead: Mapping[Any, Sequence[tuple[str, bytes, str, str]]],
        received: int,
    ) -> None:
        """One stored request: accepted, quarantined, routed and untranslatable events."""
        for tap in self.taps:
            self._source(tap, source, envelope, events, failed, received)
            self._routes(tap, source, envelope, events, received)
            if dead:
                self._untranslatable(tap, events, dead)

    def _source(
        self,
        tap: Tap,
        source: TappedSource,
        envelope: Any,
        events: Sequence[tuple[str, Any, Event | None]],
        failed: Mapping[int, Sequence[Any]],
        received: int,
    ) -> None:
        name = source.name
        if not tap.filter.at("source", name):
            return
        for event_id, raw, event in events:
            if tap.wants(event):
                decode = (
                    None
                    if event is not None
                    else _decoder(source, raw, event_id, envelope, received)
                )
                tap.offer(
                    Seen(
                        "source",
                        name,
                        "accepted",
                        event_id=event_id,
                        event=event,
                        raw=raw,
                        decode=decode,
                    )
                )
        if failed and tap.filter.type is None:
            raws = envelope.events
            for i, errors in failed.items():
                if tap.sampled():
                    reason = "; ".join(str(e) for e in errors)
                    tap.offer(
                        Seen("source", name, "quarantined", raw=raws[i], detail={"reason": reason})
                    )

    def _routes(
        self,
        tap: Tap,
        source: TappedSource,
        envelope: Any,
        events: Sequence[tuple[str, Any, Event | None]],
        received: int,
    ) -> None:
        flt = tap.filter
        if flt.point not in (None, "route"):
            return
        for route in source.routes:
            if flt.point == "route" and route.config != flt.route:
                continue
            name = route_name(route.config)
            sinks = [t.name for t in route.targets]
            for event_id, raw, event in events:
                if (event is None or route.matches(event)) and tap.wants(event):
                    decode = None  # a route sees the events decoded, or unfiltered as is
                    if event is None:
                        decode = _decoder(source, raw, event_id, envelope, received)
                    tap.offer(
                        Seen(
                            "route",
                            name,
                            "routed",
                            event_id=event_id,
                            event=event,
                            raw=raw,
                            decode=decode,
                            detail={"sinks": sinks},
                        )
                    )

    def _untranslatable(
        self,
        tap: Tap,
        events: Sequence[tuple[str, Any, Event | None]],
        dead: Mapping[Any, Sequence[tuple[str, bytes, str, str]]],
    ) -> None:
        by_id: dict[str, tuple[Any, Event | None]] | None = None
        for target, entries in dead.items():
            if not tap.filter.at("sink", target.name):
                continue
            if by_id is None:
                by_id = {event_id: (raw, event) for event_id, raw, event in events}
            for event_id, _, reason, code in entries:
                raw, event = by_id.get(event_id, (None, None))
                if tap.wants(event):
                    detail = {"reason": reason, "code": code}
                    tap.offer(
                        Seen(
                            "sink",
                            target.name,
                            "dead_lettered",
                            event_id=event_id,
                            event=event,
                            raw=raw,
                            detail=detail,
                        )
                    )

    def delivered(self, runner: TappedSink, batch: Sequence[Any]) -> None:
        """A batch the sink's upstream accepted."""
        self._sent(runner, batch, "delivered", None)

    def dead_lettered(
        self,
        runner: TappedSink,
        batch: Sequence[Any],
        reason: str,
        status: int | None,
        response: str | None,
    ) -> None:
        """A batch delivery gave up on, with why."""
        detail: dict[str, Any] = {"reason": reason}
        if status is not None:
            detail["status"] = status
        if response:
            detail["response"] = response[:MAX_TEXT_BODY]
        self._sent(runner, batch, "dead_lettered", detail)

    def _sent(
        self, runner: TappedSink, batch: Sequence[Any], kind: str, detail: dict[str, Any] | None
    ) -> None:
        name = runner.name
        codec = getattr(runner.sink, "codec", None)
        for tap in self.taps:
            if not tap.filter.at("sink", name):
                continue
            for entry in batch:
                if tap.sampled():
                    decode = _payload_decoder(codec, entry) if codec is not None else None
                    tap.offer(
                        Seen(
                            "sink",
                            name,
                            kind,
                            event_id=entry.event_id,
                            raw=entry.payload,
                            decode=decode,
                            detail=detail,
                        )
                    )


#: The hub of runners and sources built outside a daemon (tools, unit tests): never attached.
IDLE = TapHub()


class TapQueryError(ValueError):
    """A ``GET /admin/tap`` parameter that cannot be used: ``param`` names it."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param


#: The parameters of ``GET /admin/tap``.
QUERY_PARAMS = ("source", "route", "sink", "form", "type", "sample", "limit")


def parse_query(query: Mapping[str, str], config: Any) -> tuple[TapFilter, str, int | None]:
    """The filter, form and limit a tap query asks for, checked against ``config``.

    :raises TapQueryError: naming the first parameter that is unknown or wrong.
    """
    for key in query:
        if key not in QUERY_PARAMS:
            raise TapQueryError(key, f"unknown parameter (known: {', '.join(QUERY_PARAMS)})")
    points = [p for p in POINTS if query.get(p)]
    if len(points) > 1:
        raise TapQueryError(points[1], f"give one of source, route or sink, not {points[0]} too")
    point = points[0] if points else None
    name = query.get(point) if point else None
    route = None
    if point == "source" and name not in config.sources:
        raise TapQueryError("source", _unknown("source", name, config.sources))
    if point == "sink" and name not in config.sinks:
        raise TapQueryError("sink", _unknown("sink", name, config.sinks))
    if point == "route":
        route = _route(name, config.routes)
        name = route_name(route)
    form = query.get("form") or "canonical"
    if form not in FORMS:
        raise TapQueryError("form", f"{form!r} is not one of {', '.join(FORMS)}")
    sample = _number("sample", query.get("sample"), float, 1.0)
    if not 0.0 < sample <= 1.0:
        raise TapQueryError("sample", f"{sample:g} is not a fraction above 0 and at most 1")
    limit = _number("limit", query.get("limit"), int, None)
    if limit is not None and limit < 1:
        raise TapQueryError("limit", f"{limit} is not a number of events of at least 1")
    flt = TapFilter(point, name, route, query.get("type") or None, sample)
    return flt, form, limit


def _unknown(what: str, name: str | None, known: Iterable[str]) -> str:
    return f"no {what} {name!r} (known: {', '.join(sorted(known)) or 'none'})"


def _number(param: str, text: str | None, kind: type, default: Any) -> Any:
    if text is None or text == "":
        return default
    try:
        return kind(text)
    except ValueError:
        raise TapQueryError(param, f"{text!r} is not a number") from None


def _route(given: str | None, routes: Sequence[Any]) -> Any:
    """The route named by its index in ``routes:`` or by its ``from -> to`` name."""
    if given is not None and given.isdigit():
        index = int(given)
        if index < len(routes):
            return routes[index]
        raise TapQueryError("route", f"there are {len(routes)} routes, numbered from 0")
    named = [r for r in routes if given is not None and _same_name(route_name(r), given)]
    if len(named) == 1:
        return named[0]
    names = ", ".join(f"{i}: {route_name(r)}" for i, r in enumerate(routes)) or "none"
    if named:
        raise TapQueryError("route", f"{given!r} names several routes; give its index ({names})")
    raise TapQueryError("route", f"no route {given!r} (routes: {names})")


def _same_name(name: str, given: str) -> bool:
    return name.replace(" ", "") == given.replace(" ", "")


def route_name(config: Any) -> str:
    """A route's name in tap lines and ``--route``: ``from -> to`` (as reloads name it)."""
    return f"{','.join(config.sources)} -> {','.join(config.sinks)}"


def _decoder(
    source: TappedSource, raw: Any, event_id: str, envelope: Any, received: int
) -> Callable[[], Event]:
    def decode() -> Event:
        event = source.codec.decode(raw, id=event_id, received_at=received, meta=envelope.meta)
        event.source = source.name
        return event

    return decode


def _payload_decoder(codec: Any, entry: Any) -> Callable[[], Event]:
    def decode() -> Event:
        doc = orjson.loads(entry.payload)
        at = int(entry.enqueued_at * 1000)
        return codec.decode(doc, id=entry.event_id, received_at=at, meta={})

    return decode


# -- rendering ------------------------------------------------------------------------


def render(
    seen: Seen, form: str, mask: Sequence[str], redactor: Redactor, want_type: str | None
) -> dict[str, Any] | None:
    """The line for ``seen``: masked and redacted; None if its type is not wanted."""
    line: dict[str, Any] = {"point": seen.point, seen.point: seen.name, "kind": seen.kind}
    line["at"] = seen.at
    if seen.event_id is not None:
        line["event_id"] = seen.event_id
    canonical, note = (
        _canonical(seen) if form == "canonical" or want_type is not None else (None, None)
    )
    if want_type is not None and (canonical is None or canonical.get("type") != want_type):
        return None
    if form == "canonical" and canonical is None and seen.kind in ("rejected", "quarantined"):
        # Never decoded: what the source received is all there is to show.
        form = line["form"] = "vendor"
    document = canonical if form == "canonical" else _vendor(seen.raw)
    if note is not None:
        line["note"] = note
    if seen.detail:
        line.update(seen.detail)
    masked: list[str] = []
    if document is not None:
        document = (
            _mask_paths(document, mask, masked)
            if form == "canonical"
            else _mask_names(document, {p.rsplit(".", 1)[-1] for p in mask}, "event", masked)
        )
    line["event"] = document
    line = _redact(line, redactor, "", masked)
    line["masked"] = masked
    return line


def _canonical(seen: Seen) -> tuple[dict[str, Any] | None, str | None]:
    """The canonical event of ``seen`` as a dict, or None with why it has none."""
    event = seen.event
    if event is None and seen.decode is not None:
        try:
            event = seen.decode()
        except Exception as exc:  # a codec that cannot read its own payload back
            return None, f"no canonical form: {type(exc).__name__}: {exc}"
    if event is not None:
        return event.to_dict(), None
    if seen.point == "sink" and seen.raw is not None and seen.decode is None:
        # A sink without a codec sends the canonical event itself.
        doc = _vendor(seen.raw)
        return (doc, None) if isinstance(doc, dict) else (None, None)
    return None, None


def _vendor(raw: Any) -> Any:
    if not isinstance(raw, bytes | bytearray):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:MAX_TEXT_BODY].decode("utf-8", errors="replace")
        return text


def _mask_paths(document: Any, paths: Iterable[str], masked: list[str]) -> Any:
    """``document`` with the value at each dotted path masked (lists are walked)."""
    for path in paths:
        document = _mask_at(document, path.split("."), "event", masked)
    return document


def _mask_at(value: Any, parts: list[str], where: str, masked: list[str]) -> Any:
    if isinstance(value, list):
        return [_mask_at(v, parts, f"{where}[{i}]", masked) for i, v in enumerate(value)]
    if not isinstance(value, dict) or parts[0] not in value:
        return value
    key, rest = parts[0], parts[1:]
    inner = f"{where}.{key}"
    copy = dict(value)
    if rest:
        copy[key] = _mask_at(value[key], rest, inner, masked)
    elif value[key] is not None:
        copy[key] = MASKED
        masked.append(inner)
    return copy


def _mask_names(value: Any, names: set[str], where: str, masked: list[str]) -> Any:
    """``value`` with every key in ``names``, at any depth, masked."""
    if isinstance(value, list):
        return [_mask_names(v, names, f"{where}[{i}]", masked) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, inner in value.items():
        path = f"{where}.{key}"
        if key in names and inner is not None:
            out[key] = MASKED
            masked.append(path)
        else:
            out[key] = _mask_names(inner, names, path, masked)
    return out


def _redact(value: Any, redactor: Redactor, where: str, masked: list[str]) -> Any:
    """``value`` with every configured secret redacted from its strings; each path noted."""
    if not redactor:
        return value
    if isinstance(value, str):
        clean = redactor.redact(value)
        if clean != value:
            masked.append(where)
        return clean
    if isinstance(value, list):
        return [_redact(v, redactor, f"{where}[{i}]", masked) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            name = redactor.redact(key) if isinstance(key, str) else key
            path = f"{where}.{name}" if where else str(name)
            if name != key:
                masked.append(path)
            out[name] = _redact(inner, redactor, path, masked)
        return out
    return value


def _json(line: Mapping[str, Any]) -> bytes:
    return orjson.dumps(line, default=str) + b"\n"


async def stream(
    hub: TapHub,
    filter: TapFilter,
    *,
    form: str = "canonical",
    limit: int | None = None,
    mask: Sequence[str],
    redactor: Redactor | None = None,
    capacity: int = CAPACITY,
) -> AsyncIterator[bytes]:
    """Attach a tap and yield its NDJSON lines until ``limit`` events; detach on exit.

    The first line is ``{"tap": "attached", …}``; ``{"tap": "dropped", "count": n}``
    (the total so far) follows a drop within :data:`DROP_REPORT_INTERVAL`, and
    ends the stream. Cancelled or closed early (the client left), it detaches.
    """
    redactor = redactor if redactor is not None else Redactor(())
    tap = hub.attach(filter, capacity)
    try:
        yield _json(
            {
                "tap": "attached",
                "point": filter.point,
                "name": filter.name,
                "form": form,
                "type": filter.type,
                "sample": filter.sample,
                "limit": limit,
                "mask": list(mask),
            }
        )
        sent = reported = 0
        next_report = trio.current_time() + DROP_REPORT_INTERVAL
        while limit is None or sent < limit:
            seen = None
            with trio.move_on_after(max(0.0, next_report - trio.current_time())):
                try:
                    seen = await tap.receive.receive()
                except trio.EndOfChannel:
                    break
            chunk: list[bytes] = []
            while seen is not None and len(chunk) < LINES_PER_WRITE:
                line = render(seen, form, mask, redactor, filter.type)
                if line is not None:
                    chunk.append(_json(line))
                    sent += 1
                    if sent == limit:
                        break
                try:
                    seen = tap.receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    seen = None
            if chunk:
                yield b"".join(chunk)
            if trio.current_time() >= next_report:
                next_report = trio.current_time() + DROP_REPORT_INTERVAL
                if tap.dropped != reported:
                    reported = tap.dropped
                    yield _json({"tap": "dropped", "count": reported})
        yield _json({"tap": "dropped", "count": tap.dropped})
    finally:
        hub.detach(tap)
