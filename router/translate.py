"""Offline translation and validation of NDJSON events (``router translate``, ``router validate``).

The same parts as the daemon, without HTTP or a spool: the source's envelope
parsing, the vendors' validators, the codecs. Each input line holds one
vendor event (an object that goes inside ``messageBody``/``data``, or a
whole single-event body) or a whole request body with its envelope; the
vendor name ``canonical`` stands for :class:`~router.Event` JSON.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import cerberus
import orjson

from router.config import SINK_CORE_SCHEMA
from router.errors import BadRequest, FieldError, UnknownVendor, Untranslatable, UsageError
from router.event import Event, new_event_id, now_ms
from router.registry import Registry
from router.source import IngestRequest
from router.validation import flatten_errors

__all__ = [
    "CANONICAL",
    "LineProblem",
    "Translator",
    "UnknownOption",
    "UnknownVendor",
    "check_options",
]

CANONICAL = "canonical"


class UnknownOption(UsageError):
    """A destination option (``-o KEY=VALUE``) that the vendor's sink does not take."""


def check_options(registry: Registry, destination: str, options: Mapping[str, Any]) -> None:
    """Reject options the destination's sink does not know, or values it would refuse.

    ``required`` rules are left out: translating needs no ``url`` or ``api_key``.

    :raises UnknownOption: naming the option and what would be accepted.
    """
    if not options:
        return
    # type_map is a core option of every sink; a plugin's schema may narrow it.
    schema: dict[str, Any] = {"type_map": SINK_CORE_SCHEMA["type_map"]}
    for cls in registry.sinks.values():
        if cls.vendor == destination:
            schema.update(cls.options_schema)
    schema = {
        key: {k: v for k, v in rule.items() if k != "required"} for key, rule in schema.items()
    }
    for key in options:
        if key not in schema:
            close = difflib.get_close_matches(key, schema, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(schema)) or "none"
            raise UnknownOption(f"{destination} has no option {key!r} ({hint}options: {known})")
    validator = cerberus.Validator(schema)
    if not validator.validate(dict(options), normalize=False):
        problem = flatten_errors(validator.errors)[0]
        raise UnknownOption(f"option {problem}")


@dataclass(frozen=True, slots=True)
class LineProblem:
    """Why one input event failed: ``line`` is 1-based, ``index`` its place in an envelope."""

    line: int
    index: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f"[{self.index}]" if self.index is not None else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Read:
    line: int
    index: int | None
    raw: Any
    meta: Mapping[str, Any]


class Translator:
    """Reads one vendor's events and checks or translates them into another's."""

    def __init__(
        self,
        registry: Registry,
        source: str,
        destination: str | None = None,
        options: Mapping[str, Any] | None = None,
    ):
        for vendor in (source, destination):
            if vendor is not None and vendor != CANONICAL and vendor not in registry.codecs:
                known = ", ".join(sorted([*registry.codecs, CANONICAL]))
                raise UnknownVendor(f"no vendor {vendor!r} (known: {known})")
        self.registry = registry
        self.source = source
        self.destination = destination
        self.options = dict(options or {})
        self.validators = registry.validators
        source_cls = registry.sources.get(source)
        self._source = source_cls("cli", {}) if source_cls is not None else None
        #: Each ingest route's events field; a line holding one is a whole request body.
        self._fields: dict[str, str | None] = (
            {
                r.name: source_cls.events_field_of(r.name)
                for r in source_cls.routes
                if r.handler is None
            }
            if source_cls is not None
            else {}
        )

    # -- reading -------------------------------------------------------------------

    def read(self, lines: Iterable[str]) -> Iterator[_Read | LineProblem]:
        """Each event found in NDJSON ``lines``, or the problem with its line."""
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                yield LineProblem(number, None, f"invalid JSON: {exc}")
                continue
            if self._source is None:
                yield _Read(number, None, value, {})
                continue
            route = self._route_of(value)
            if route is None:
                yield _Read(number, None, value, {})
                continue
            request = IngestRequest("POST", "", {}, text.encode(), route=route)
            try:
                envelope = self._source.split(request, value)
            except BadRequest as exc:
                yield LineProblem(number, None, exc.message)
                continue
            single = self._fields[route] is None
            for i, raw in enumerate(envelope.events):
                yield _Read(number, None if single else i, raw, envelope.meta)

    def _route_of(self, value: Any) -> str | None:
        """The route whose request body ``value`` is, or ``None`` if it is one event.

        A route with an events field claims a body holding that field; a
        single-event route claims any line (a single-event API's bodies are events).
        """
        single = None
        for route, field in self._fields.items():
            if field is None:
                single = single or route
            elif isinstance(value, dict) and field in value:
                return route
        return single

    # -- checking and translating ----------------------------------------------------

    def check(self, item: _Read) -> LineProblem | None:
        """The validation problem of one source event, if any."""
        if self.source == CANONICAL:
            try:
                Event.from_dict(item.raw)
            except (TypeError, ValueError, ArithmeticError) as exc:
                return LineProblem(item.line, item.index, f"not a canonical event: {exc}")
            return None
        codec = self.registry.codecs[self.source]
        errors = self.validators.check(self.source, codec.event_type(item.raw), item.raw)
        if errors:
            return LineProblem(item.line, item.index, _errors(errors))
        return None

    def translate(self, item: _Read) -> dict[str, Any] | LineProblem:
        """One valid source event as a destination event, or why it cannot be one."""
        if self.source == CANONICAL:
            event = Event.from_dict(item.raw)
        else:
            now = now_ms()
            event = self.registry.codecs[self.source].decode(
                item.raw, id=new_event_id(), received_at=now, meta=item.meta
            )
        if self.destination == CANONICAL:
            return event.to_dict()
        codec = self.registry.codecs[self.destination]
        try:
            out = codec.encode(event, self.options)
        except Untranslatable as exc:
            field = f" (field {exc.field})" if exc.field else ""
            return LineProblem(
                item.line,
                item.index,
                f"cannot translate to {self.destination}: {exc.reason}{field}",
            )
        errors = self.validators.check(self.destination, codec.event_type(out), out)
        if errors:
            return LineProblem(
                item.line, item.index, f"not a valid {self.destination} event: {_errors(errors)}"
            )
        return out

    def run(self, lines: Iterable[str], out: TextIO | None, err: TextIO) -> tuple[int, int]:
        """Check (``out=None``) or translate every event; returns ``(ok, failed)``."""
        ok = failed = 0
        for item in self.read(lines):
            problem = item if isinstance(item, LineProblem) else self.check(item)
            if problem is None and out is not None:
                result = self.translate(item)
                if isinstance(result, LineProblem):
                    problem = result
                else:
                    out.write(orjson.dumps(result).decode() + "\n")
            if problem is None:
                ok += 1
            else:
                failed += 1
                err.write(f"{problem}\n")
        return ok, failed


def _errors(errors: list[FieldError]) -> str:
    return "; ".join(str(e) for e in errors)
