"""One ``router top`` screen: a status snapshot (``router.status.snapshot``) as rich renders it.

:func:`render` is a pure function of the snapshot and the screen size, so
what the dashboard shows is tested without a terminal. Everything fits the
width it is given: columns have fixed widths, long names and errors end in
``…``, and the rows that do not fit the height are counted as ``+N more``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["render"]

#: Lines every screen has besides the table rows: two header lines, a blank,
#: the sources' column headings, a blank, the sinks' column headings.
_FIXED_LINES = 6


def render(
    snapshot: Mapping[str, Any] | None,
    *,
    width: int = 80,
    height: int | None = 24,
    target: str = "",
    error: str | None = None,
    now: float | None = None,
) -> RenderableType:
    """The screen for ``snapshot`` (``None``: none read yet) at ``width`` by ``height``.

    ``target`` is the admin URL read; ``error`` is why the last read failed
    (the screen then shows the last snapshot, if any, under that line).
    ``height=None`` shows every row.
    """
    now = time.time() if now is None else now
    lines: list[RenderableType] = [_title(snapshot, width), _subtitle(target, error, now, width)]
    if snapshot is None:
        return Group(*lines)
    sources = dict(snapshot.get("sources") or {})
    sinks = dict(snapshot.get("sinks") or {})
    extra = _extra_lines(snapshot, sinks, width)
    if height is None:
        room_sources, room_sinks = len(sources), len(sinks)
    else:
        room = max(2, height - _FIXED_LINES - len(extra))
        room_sources, room_sinks = _share(room, len(sources), len(sinks))
    lines += [Text(""), _sources(sources, room_sources, width)]
    lines += [Text(""), _sinks(sinks, room_sinks, width, snapshot.get("time") or now)]
    lines += extra
    return Group(*lines)


# -- the header ------------------------------------------------------------------


_STATUS_STYLE = {
    "ready": "bold green",
    "degraded": "bold yellow",
    "starting": "bold cyan",
    "stopping": "bold cyan",
    "storage_failing": "bold red",
}


def _title(snapshot: Mapping[str, Any] | None, width: int) -> Text:
    if snapshot is None:
        return _line(Text("router", style="bold"), width)
    status = str(snapshot.get("status", "?"))
    workers = snapshot.get("workers") or []
    text = Text.assemble(
        (f"router {snapshot.get('version', '?')}", "bold"),
        "  ",
        (status, _STATUS_STYLE.get(status, "bold")),
        f"  workers {len(workers)}" if len(workers) > 1 else "  1 worker",
        f"  up {_duration(snapshot.get('uptime_seconds'))}",
    )
    reloads = snapshot.get("reloads") or []
    if reloads:
        last = reloads[-1]
        result = str(last.get("result", "?"))
        text.append(f"  reload {_clock(last.get('at'))} ")
        text.append(result, style="red" if result == "rejected" else "")
    return _line(text, width)


def _subtitle(target: str, error: str | None, now: float, width: int) -> Text:
    if error is not None:
        return _line(Text(f"{error} (retrying)", style="bold red"), width)
    return _line(Text(f"{target}  {_clock(now)}  q quits", style="dim"), width)


def _line(text: Text, width: int) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    text.truncate(width, overflow="ellipsis")
    return text


def _share(room: int, sources: int, sinks: int) -> tuple[int, int]:
    """Rows for sources and sinks out of ``room``: what each needs, else half each."""
    if sources + sinks <= room:
        return sources, sinks
    half = room // 2
    if sources <= half:
        return sources, room - sources
    if sinks <= room - half:
        return room - sinks, sinks
    return half, room - half


# -- the tables ------------------------------------------------------------------


def _table(columns: Sequence[tuple[str, int, str]]) -> Table:
    table = Table(
        box=None,
        padding=(0, 0, 0, 1),
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        expand=False,
    )
    for heading, size, justify in columns:
        table.add_column(heading, width=size, justify=justify, no_wrap=True, overflow="ellipsis")
    return table


def _flexible(
    width: int, fixed: Sequence[int], names: Sequence[str], least: int
) -> tuple[int, int]:
    """Widths of the name column and the last (text) column, which share what is left.

    The name column is wide enough for ``names`` (its heading, its rows, a
    ``+N more``) if there is room, but leaves the last column ``least`` characters.
    """
    left = width - sum(fixed) - (len(fixed) + 1)  # a space before every column but the first
    longest = max((len(n) for n in names), default=0)
    name = max(6, min(longest, left - least, max(16, left // 2)))
    return name, max(1, left - name)


def _parts_table(
    kind: str,
    parts: Mapping[str, Any],
    columns: Sequence[tuple[str, int]],
    last: str,
    least: int,
    room: int,
    width: int,
) -> Table:
    """An empty table of ``parts``: the name, the fixed ``columns``, then ``last`` (text)."""
    heading = f"{kind} ({len(parts)})"
    names = [heading, *parts, _more(len(parts), room)]
    name_width, last_width = _flexible(width, [size for _, size in columns], names, least)
    return _table(
        [
            (heading, name_width, "left"),
            *((title, size, "right") for title, size in columns),
            (last, last_width, "left"),
        ]
    )


def _more(rows: int, room: int) -> str:
    """The last row's text when ``rows`` do not fit in ``room`` ("" when they do)."""
    return f"+{rows - max(0, room - 1)} more" if rows > room else ""


def _rows(table: Table, rows: list[list[Text | str]], room: int) -> Table:
    if len(rows) > room:
        shown = max(0, room - 1)
        for row in rows[:shown]:
            table.add_row(*row)
        table.add_row(Text(_more(len(rows), room), style="dim"))
    else:
        for row in rows:
            table.add_row(*row)
    return table


#: (heading, width) of the numeric columns of the sources' table.
_SOURCE_COLUMNS = [("REQ/S", 6), ("EV/S", 6), ("REJ/S", 6), ("P99", 6)]


def _sources(sources: Mapping[str, Mapping[str, Any]], room: int, width: int) -> Table:
    table = _parts_table("SOURCES", sources, _SOURCE_COLUMNS, "RATE LIMIT", 10, room, width)
    rows: list[list[Text | str]] = []
    for name, part in sorted(sources.items()):
        rejects = float(part.get("rejects_per_s") or 0.0)
        rows.append(
            [
                name,
                _rate(part.get("requests_per_s")),
                _rate(part.get("events_per_s")),
                Text(_rate(rejects), style="yellow" if rejects > 0 else ""),
                _seconds(part.get("p99_seconds")),
                _source_limit(part.get("rate_limit"), part.get("limited_per_s")),
            ]
        )
    return _rows(table, rows, room)


#: (heading, width) of the numeric columns of the sinks' table.
_SINK_COLUMNS = [
    ("DELIV/S", 7),
    ("PEND", 6),
    ("AGE", 5),
    ("RETRY", 5),
    ("PAUSED", 8),
    ("DEAD", 5),
]


def _sinks(sinks: Mapping[str, Mapping[str, Any]], room: int, width: int, now: float) -> Table:
    table = _parts_table("SINKS", sinks, _SINK_COLUMNS, "LAST ERROR", 12, room, width)
    rows: list[list[Text | str]] = []
    for name, part in sorted(sinks.items()):
        failing = float(part.get("failing_for") or 0.0) > 0 or bool(part.get("last_error"))
        pending = part.get("pending") or 0
        dead = part.get("dead_letters_stored", part.get("dead_lettered")) or 0
        paused = part.get("paused_until")
        rows.append(
            [
                Text(name, style="bold red" if failing else ""),
                _rate(part.get("delivered_per_s")),
                Text(_count(pending), style="yellow" if pending and failing else ""),
                _age(part.get("oldest_age_seconds")),
                _count(part.get("retried")),
                _clock(paused) if paused is not None and paused > now else "-",
                Text(_count(dead), style="red" if dead else ""),
                Text(_one_line(part.get("last_error") or ""), style="red"),
            ]
        )
    return _rows(table, rows, room)


def _extra_lines(
    snapshot: Mapping[str, Any], sinks: Mapping[str, Mapping[str, Any]], width: int
) -> list[RenderableType]:
    """Sink limits, orphaned queues and storage errors, one line each when there are any."""
    lines: list[RenderableType] = []
    limits = [
        f"{name} {text}"
        for name, part in sorted(sinks.items())
        if (text := _sink_limit(part.get("rate_limit")))
    ]
    if limits:
        lines.append(_line(Text("sink limits: " + ", ".join(limits)), width))
    orphaned = snapshot.get("orphaned") or {}
    if orphaned:
        queues = ", ".join(f"{name} {_count(n)}" for name, n in sorted(orphaned.items()))
        lines.append(_line(Text(f"orphaned queues: {queues}", style="yellow"), width))
    errors = snapshot.get("storage_errors") or []
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        text = Text(f"storage: {_one_line(str(errors[0]))}{more}", style="bold red")
        lines.append(_line(text, width))
    return lines


# -- numbers ---------------------------------------------------------------------


def _rate(value: Any) -> str:
    """Events or requests per second in at most 5 characters: ``0``, ``0.4``, ``12``, ``1.2k``."""
    x = float(value or 0.0)
    if x <= 0:
        return "0"
    if x < 9.95:
        return f"{x:.1f}"
    return _count(x)


def _count(value: Any) -> str:
    """A count in at most 5 characters: ``999``, ``1.2k``, ``12k``, ``3.4M``."""
    x = float(value or 0)
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= bound:
            scaled = x / bound
            return f"{scaled:.1f}{suffix}" if scaled < 9.95 else f"{scaled:.0f}{suffix}"
    return f"{x:.0f}"


def _seconds(value: Any) -> str:
    """A latency: ``-`` (none), ``5ms``, ``250ms``, ``2.5s``."""
    if value is None:
        return "-"
    x = float(value)
    if x < 1:
        return f"{x * 1000:.0f}ms" if x >= 0.001 else "<1ms"
    return f"{x:.1f}s" if x < 10 else f"{x:.0f}s"


def _age(value: Any) -> str:
    """The oldest pending event's age: ``-`` (unknown), ``0s``, ``45s``, ``3m``, ``2h``, ``4d``."""
    if value is None:
        return "-"
    x = max(0.0, float(value))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if x >= size:
            return f"{math.floor(x / size)}{unit}"
    return f"{x:.0f}s"


def _duration(value: Any) -> str:
    """An uptime: ``42s``, ``5m12s``, ``2h03m``, ``3d04h``."""
    if value is None:
        return "?"
    x = int(max(0.0, float(value)))
    days, rest = divmod(x, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def _clock(at: Any) -> str:
    """A time of day, local, as ``HH:MM:SS`` (``-`` when none)."""
    if at is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(float(at)))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _source_limit(limit: Mapping[str, Any] | None, limited: Any = None) -> Text:
    """``100 req/s b200 per ip redis``: rate, burst, key and backend of an inbound limit.

    While the limiter refuses events it starts with ``limiting 12/s,`` (events
    refused per second), in yellow: what is cut first if the column is narrow
    is the limit's settings, not that.
    """
    if not limit:
        return Text("-")
    unit = "ev/s" if limit.get("unit") == "events" else "req/s"
    parts = [f"{_number(limit.get('rate'))} {unit}"]
    if limit.get("burst") is not None:
        parts.append(f"b{limit['burst']}")
    if limit.get("key"):
        parts.append(f"per {limit['key']}")
    if limit.get("backend") == "redis":
        parts.append("redis")
    text = Text(" ".join(parts))
    if limited:
        text = Text.assemble((f"limiting {_rate(limited)}/s", "bold yellow"), ", ", text)
    return text


def _sink_limit(limit: Mapping[str, Any] | None) -> str:
    """``5 req/s 50 ev/s``: what an outbound limit allows (empty when it has no limit)."""
    if not limit:
        return ""
    parts = []
    if limit.get("requests_per_second") is not None:
        parts.append(f"{_number(limit['requests_per_second'])} req/s")
    if limit.get("events_per_second") is not None:
        parts.append(f"{_number(limit['events_per_second'])} ev/s")
    if parts and limit.get("backend") == "redis":
        parts.append("(redis)")
    return " ".join(parts)


def _number(value: Any) -> str:
    return f"{float(value or 0):g}"
