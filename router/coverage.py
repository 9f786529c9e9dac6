"""Translation coverage: which of a source's event types each route's sinks can take.

Worked out from the codecs' declared tables (:attr:`Codec.decoded_types`,
``always``, ``sometimes``, ``needs``) and the sink's options, not from traffic:
for each event type of the source, the sink's type (``type_map`` and the
codec's defaults) and whether every field that type needs is always there,
sometimes there, or never there. ``router check`` prints it; ``--strict``
fails on any type that would always be dead-lettered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from router.codec import Codec, Requirement

if TYPE_CHECKING:
    from router.config import RouterConfig
    from router.registry import Registry

__all__ = [
    "CUSTOM",
    "DEAD",
    "DEPENDS",
    "TRANSLATES",
    "Row",
    "check_command",
    "config_coverage",
    "route_coverage",
]

TRANSLATES = "translates"
DEAD = "dead-lettered"
DEPENDS = "depends"
#: The row of a source's open-ended (custom) type names.
CUSTOM = "(custom types)"


@dataclass(frozen=True, slots=True)
class Row:
    """One source event type on one route: what it becomes at the sink, and whether it can."""

    source_type: str
    #: Its canonical type (``None`` for the custom-types row).
    canonical: str | None
    #: The sink's type for it; ``None`` when there is none.
    sink_type: str | None
    status: str
    #: What is missing, and what to change (empty when it translates).
    reason: str = ""
    fix: str = ""


def route_coverage(source: Codec, sink: Codec, options: Mapping[str, Any]) -> list[Row]:
    """Every event type of ``source`` as it would reach ``sink`` with these sink options."""
    types: list[tuple[str, str | None]] = list(source.decoded_types.items())
    if source.custom_types:
        types.append((CUSTOM, None))
    same = source.vendor == sink.vendor
    rows = []
    for source_type, canonical in types:
        if same and sink.passthrough(options):
            rows.append(Row(source_type, canonical, source_type, TRANSLATES, "as received"))
            continue
        sink_type = _sink_type(sink, canonical, options)
        if sink_type is None:
            name = canonical or "custom"
            rows.append(
                Row(
                    source_type,
                    canonical,
                    None,
                    DEAD,
                    f"{source_type} ({name}) has no {sink.vendor} type",
                    f"map {canonical or 'it'} in the sink option type_map"
                    + (' (or "*")' if canonical is None else ""),
                )
            )
            continue
        key = source_type if source_type != CUSTOM else "*"
        always = source.always.get(key, frozenset())
        sometimes = source.sometimes.get(key, frozenset({"*"}))
        needs = [*sink.needs.get("*", ()), *sink.needs.get(sink_type or "", ())]
        dead = depends = None
        for need in needs:
            met = _meets(need, always, sometimes, options)
            if met == DEAD and dead is None:
                dead = need
            elif met == DEPENDS and depends is None:
                depends = need
        shown = sink_type if sink_type else "(its own name)"
        if dead is not None:
            reason = f"{shown} needs {dead.what} and {source.vendor} {source_type} has none"
            rows.append(Row(source_type, canonical, sink_type, DEAD, reason, dead.fix))
        elif depends is not None:
            reason = f"{shown} needs {depends.what}, which not every {source_type} has"
            rows.append(Row(source_type, canonical, sink_type, DEPENDS, reason, depends.fix))
        else:
            rows.append(Row(source_type, canonical, sink_type, TRANSLATES))
    return rows


def _sink_type(sink: Codec, canonical: str | None, options: Mapping[str, Any]) -> str | None:
    """The sink's type for a canonical type (``None``: a custom type), ``""`` for "its own name"."""
    if canonical is not None:
        mapped = sink.resolve_type(canonical, options)
    else:
        # An unknown custom name: only the catch-all can map it.
        type_map = options.get("type_map") or {}
        mapped = None if sink.custom_types else (type_map.get("*") or None)
    if mapped is None and sink.custom_types:
        return ""
    return mapped


def _meets(
    need: Requirement,
    always: Iterable[str],
    sometimes: frozenset[str],
    options: Mapping[str, Any],
) -> str:
    if need.option is not None and options.get(need.option):
        return TRANSLATES
    fields = set(need.fields)
    if need.fields_option is not None and options.get(need.fields_option):
        fields = {f"identity.{name}" for name in options[need.fields_option]}
    for option, more in need.counts_with.items():
        value = options.get(option)
        if value:
            fields |= set(more) if more is not None else {f"identity.{name}" for name in value}
    if need.risky:
        present = set(sometimes) | {f for alt in always for f in alt.split("|")}
        return DEPENDS if "*" in present or present & set(need.risky) else TRANSLATES
    seen = False
    for alternatives in always:
        options_of = set(alternatives.split("|"))
        if options_of <= fields:
            return TRANSLATES
        seen |= bool(options_of & fields)
    if seen or "*" in sometimes or sometimes & fields:
        return DEPENDS
    return DEAD


def config_coverage(config: RouterConfig, registry: Registry) -> list[tuple[str, str, list[Row]]]:
    """``(source, sink, rows)`` for every source and sink a route connects, in config order."""
    out: list[tuple[str, str, list[Row]]] = []
    seen: set[tuple[str, str]] = set()
    for route in config.routes:
        for source_name in route.sources:
            source = registry.codecs.get(config.sources[source_name].plugin)
            for sink_name in route.sinks:
                sink_config = config.sinks[sink_name]
                sink = registry.codecs.get(sink_config.plugin)
                if source is None or sink is None or (source_name, sink_name) in seen:
                    continue  # a sink without a codec (file) takes canonical events
                seen.add((source_name, sink_name))
                rows = route_coverage(source, sink, sink_config.options)
                if route.types is not None:
                    rows = [r for r in rows if r.canonical is None or r.canonical in route.types]
                out.append((source_name, sink_name, rows))
    return out


def format_coverage(routes: list[tuple[str, str, list[Row]]]) -> list[str]:
    """The coverage as lines for people: one per event type, the fix after a dead letter."""
    lines = []
    for source, sink, rows in routes:
        lines.append(f"coverage {source} -> {sink}:")
        width = max((len(r.source_type) for r in rows), default=0)
        for row in rows:
            target = row.sink_type if row.sink_type else "(its own name)"
            if row.status == DEAD and row.sink_type is None:
                target = "-"
            head = f"  {row.source_type:<{width}}  -> {target:<20} {row.status}"
            if row.status == TRANSLATES:
                lines.append(head + (f" ({row.reason})" if row.reason else ""))
            else:
                lines.append(f"{head}: {row.reason}; {row.fix}")
    return lines


def check_command(
    config: RouterConfig, registry: Registry, strict: bool, out: TextIO, err: TextIO
) -> int:
    """``router check``'s coverage part: print it; 1 under ``strict`` if a type is dead-lettered."""
    routes = config_coverage(config, registry)
    for line in format_coverage(routes):
        print(line, file=out)
    dead = [(source, sink, r) for source, sink, rows in routes for r in rows if r.status == DEAD]
    if strict and dead:
        print(
            f"router: {len(dead)} event types would be dead-lettered (--strict): "
            + ", ".join(f"{source}->{sink} {r.source_type}" for source, sink, r in dead),
            file=err,
        )
        return 1
    return 0
