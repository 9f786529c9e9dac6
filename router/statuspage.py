"""The status page of the admin listener: one :func:`router.status.snapshot` as HTML.

Rendered on the server from plain strings, with no JavaScript: the page
reloads itself every :data:`REFRESH` seconds (``<meta http-equiv="refresh">``).
Every value taken from the snapshot goes through :func:`html.escape`, because
an upstream's error text, a rejected config's problems or a name may contain
markup. Sections have stable ids (``summary``, ``topology``, ``sources``,
``sinks``, ``stored``, ``orphaned``, ``reloads``) and rows name their part in
``data-source`` / ``data-sink``, for scripts and tests that read the page.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REFRESH", "render", "render_login"]

#: Seconds between the page's reloads of itself.
REFRESH = 2
#: Shown where a value is unknown.
_NONE = "-"

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1d2330;background:#f7f8fa}
h1{font-size:20px;margin:.8em 0 .2em}h2{font-size:16px;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;min-width:40%}
th,td{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eceff4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;background:#5b6472}
.status-ready{background:#1f883d}.status-degraded{background:#bf8700}
.status-storage_failing,.status-stopping{background:#cf222e}
tr.failing td{background:#ffebe9}span.sink.failing{color:#cf222e;font-weight:600}
.last-error{color:#cf222e;font-family:ui-monospace,monospace;white-space:pre-wrap}
.errors li{color:#cf222e}.result-rejected td{background:#ffebe9}.muted{color:#6e7781}
.arrow{color:#6e7781;text-align:center}code,.mono{font-family:ui-monospace,monospace}
"""


def e(value: Any) -> str:
    """``value`` as escaped text (quotes too, so it is safe in an attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _NONE
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _rate(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else _NONE


def _seconds(value: Any) -> str:
    """A duration for a person: ``850 ms``, ``4.2 s``, ``3 m 10 s``, ``2 h 5 m``."""
    if not isinstance(value, int | float) or math.isnan(value) or value < 0:
        return _NONE
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} m {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} m"


def _when(at: Any) -> str:
    if not isinstance(at, int | float):
        return _NONE
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _failing(sink: Mapping[str, Any]) -> bool:
    failing_for = sink.get("failing_for") or 0
    return bool(sink.get("last_error")) or (
        isinstance(failing_for, int | float) and failing_for > 0
    )


def _table(headers: Iterable[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _summary(snap: Mapping[str, Any]) -> str:
    status = str(snap.get("status") or "unknown")
    workers = ", ".join(e(w) for w in snap.get("workers") or ())
    errors = "".join(f"<li>{e(line)}</li>" for line in snap.get("storage_errors") or ())
    return (
        f'<header id="summary" data-status="{e(status)}">'
        f'<h1>router <span class="muted">{e(snap.get("version"))}</span> '
        f'<span class="status status-{e(status)}">{e(status)}</span></h1>'
        f'<p class="muted">up {e(_seconds(snap.get("uptime_seconds")))} · worker {workers} · '
        f"as of {e(_when(snap.get('time')))} · reloads itself every {REFRESH} s · "
        f'<a href="/admin/status">JSON</a></p>'
        + (f'<ul id="storage-errors" class="errors">{errors}</ul>' if errors else "")
        + "</header>"
    )


def _sink_tag(name: str, sinks: Mapping[str, Any]) -> str:
    failing = " failing" if _failing(sinks.get(name) or {}) else ""
    return f'<span class="sink{failing}" data-sink="{e(name)}">{e(name)}</span>'


def _topology(snap: Mapping[str, Any]) -> str:
    sources = snap.get("sources") or {}
    sinks = snap.get("sinks") or {}
    rows = []
    routed_sources: set[str] = set()
    routed_sinks: set[str] = set()
    for route in snap.get("routes") or ():
        froms = [str(s) for s in route.get("from") or ()]
        tos = [str(s) for s in route.get("to") or ()]
        routed_sources.update(froms)
        routed_sinks.update(tos)
        filters = []
        if route.get("types") is not None:
            filters.append("types: " + ", ".join(str(t) for t in route["types"]))
        if route.get("match"):
            filters.append(
                "match: " + ", ".join(f"{k} = {v}" for k, v in dict(route["match"]).items())
            )
        rows.append(
            '<tr class="route">'
            '<td class="from">'
            + " ".join(f'<span class="source" data-source="{e(s)}">{e(s)}</span>' for s in froms)
            + '</td><td class="arrow">→</td>'
            f'<td class="filter">{e("; ".join(filters) or "every event")}</td>'
            '<td class="arrow">→</td><td class="to">'
            + " ".join(_sink_tag(s, sinks) for s in tos)
            + "</td></tr>"
        )
    unrouted = [f'<span class="source" data-source="{e(s)}">{e(s)}</span>' for s in sources]
    unrouted = [
        tag for name, tag in zip(sources, unrouted, strict=True) if name not in routed_sources
    ]
    idle = [_sink_tag(s, sinks) for s in sinks if s not in routed_sinks]
    if unrouted or idle:
        rows.append(
            '<tr class="route unrouted muted"><td class="from">'
            + " ".join(unrouted)
            + '</td><td class="arrow">·</td><td class="filter">no route</td>'
            '<td class="arrow">·</td><td class="to">' + " ".join(idle) + "</td></tr>"
        )
    if snap.get("status") == "starting" and not rows:
        body = '<p class="muted empty">no topology yet: the router is starting</p>'
    else:
        body = _table(("sources", "", "route", "", "sinks"), rows, "no routes")
    return f'<section id="topology"><h2>Topology</h2>{body}</section>'


def _sources(snap: Mapping[str, Any]) -> str:
    rows = []
    for name, source in (snap.get("sources") or {}).items():
        limit = source.get("rate_limit")
        limit_text = (
            f"{_number(limit.get('rate'))}/{limit.get('unit', 's')} burst "
            f"{_number(limit.get('burst'))} ({limit.get('backend')})"
            if isinstance(limit, Mapping)
            else _NONE
        )
        p99 = source.get("p99_seconds")
        rows.append(
            f'<tr class="source" data-source="{e(name)}">'
            f'<td class="name">{e(name)}</td><td>{e(source.get("plugin"))}</td>'
            f'<td class="num requests-per-s">{e(_rate(source.get("requests_per_s")))}</td>'
            f'<td class="num events-per-s">{e(_rate(source.get("events_per_s")))}</td>'
            f'<td class="num rejects-per-s">{e(_rate(source.get("rejects_per_s")))}</td>'
            f'<td class="num p99">{e("≤ " + _seconds(p99) if p99 is not None else _NONE)}</td>'
            f'<td class="num events-accepted">{e(_number(source.get("events_accepted")))}</td>'
            f'<td class="num events-rejected">{e(_number(source.get("events_rejected")))}</td>'
            f"<td>{e(limit_text)}</td></tr>"
        )
    headers = (
        "source",
        "plugin",
        "req/s",
        "events/s",
        "rejects/s",
        "p99",
        "accepted",
        "rejected",
        "rate limit",
    )
    return (
        '<section id="sources"><h2>Sources</h2>'
        + _table(headers, rows, "no sources")
        + "</section>"
    )


def _sink_state(sink: Mapping[str, Any], now: Any) -> str:
    if _failing(sink):
        return f"failing for {_seconds(sink.get('failing_for'))}"
    paused = sink.get("paused_until")
    if isinstance(paused, int | float) and isinstance(now, int | float) and paused > now:
        return f"paused for {_seconds(paused - now)}"
    return "ok"


def _sinks(snap: Mapping[str, Any]) -> str:
    sinks = snap.get("sinks") or {}
    # The age of the oldest pending event, where the queues report it.
    aged = any(sink.get("oldest_age_seconds") is not None for sink in sinks.values())
    rows = []
    for name, sink in sinks.items():
        failing = _failing(sink)
        oldest = _seconds(sink.get("oldest_age_seconds"))
        rows.append(
            f'<tr class="sink{" failing" if failing else ""}" data-sink="{e(name)}">'
            f'<td class="name">{e(name)}</td><td>{e(sink.get("plugin"))}</td>'
            f'<td class="state">{e(_sink_state(sink, snap.get("time")))}</td>'
            f'<td class="num delivered-per-s">{e(_rate(sink.get("delivered_per_s")))}</td>'
            f'<td class="num delivered">{e(_number(sink.get("delivered")))}</td>'
            f'<td class="num retried">{e(_number(sink.get("retried")))}</td>'
            f'<td class="num pending">{e(_number(sink.get("pending")))}</td>'
            f'<td class="num in-flight">{e(_number(sink.get("in_flight")))}</td>'
            + (f'<td class="num oldest-age">{e(oldest)}</td>' if aged else "")
            + f'<td class="last-error">{e(sink.get("last_error") or "")}</td></tr>'
        )
    headers = [
        "sink", "plugin", "state", "delivered/s", "delivered", "retried", "pending", "in flight",
    ]  # fmt: skip
    headers += ["oldest pending", "last error"] if aged else ["last error"]
    return '<section id="sinks"><h2>Sinks</h2>' + _table(headers, rows, "no sinks") + "</section>"


def _stored(snap: Mapping[str, Any]) -> str:
    rows = []
    for name, sink in (snap.get("sinks") or {}).items():
        rows.append(
            f'<tr class="sink" data-sink="{e(name)}"><td class="name">{e(name)}</td>'
            f"<td>{e(sink.get('buffer') or '')}</td>"
            f'<td class="num dead-lettered">{e(_number(sink.get("dead_lettered")))}</td>'
            f'<td class="num dead-letters">{e(_number(sink.get("dead_letters_stored")))}</td>'
            "</tr>"
        )
    table = _table(
        ("sink", "buffer", "dead-lettered since start", "dead letters stored"), rows, "no sinks"
    )
    quarantined = _number(snap.get("quarantined"))
    return (
        '<section id="stored"><h2>Dead letters and quarantine</h2>'
        f'<p id="quarantined">Quarantined events: <span class="count">{e(quarantined)}</span> '
        '<span class="muted">(<code>router quarantine</code>; dead letters: '
        "<code>router dlq</code>)</span></p>" + table + "</section>"
    )


def _orphaned(snap: Mapping[str, Any]) -> str:
    rows = [
        f'<tr class="orphan" data-sink="{e(name)}"><td class="name">{e(name)}</td>'
        f'<td class="num pending">{e(_number(pending))}</td></tr>'
        for name, pending in (snap.get("orphaned") or {}).items()
    ]
    return (
        '<section id="orphaned"><h2>Orphaned queues</h2>'
        + _table(("queue (no sink of this config)", "pending"), rows, "none")
        + "</section>"
    )


def _changes(changes: Any) -> str:
    if not isinstance(changes, Mapping):
        return ""
    parts = []
    for verb in ("added", "removed", "changed"):
        for kind, names in (changes.get(verb) or {}).items():
            parts.append(f"{verb} {kind}: {', '.join(str(n) for n in names)}")
    if changes.get("restart_required"):
        parts.append("restart required: " + ", ".join(str(k) for k in changes["restart_required"]))
    return "; ".join(parts)


def _reloads(snap: Mapping[str, Any]) -> str:
    rows = []
    for entry in reversed(list(snap.get("reloads") or ())):
        result = str(entry.get("result") or "")
        problems = "".join(f"<li>{e(p)}</li>" for p in entry.get("problems") or ())
        rows.append(
            f'<tr class="reload result-{e(result)}">'
            f'<td class="at">{e(_when(entry.get("at")))}</td>'
            f'<td class="trigger">{e(entry.get("trigger"))}</td>'
            f'<td class="result">{e(result)}</td>'
            f'<td class="changes">{e(_changes(entry.get("changes")))}</td>'
            f'<td class="hash mono">{e(entry.get("config_hash"))}</td>'
            f'<td class="problems">{f"<ul>{problems}</ul>" if problems else ""}</td></tr>'
        )
    headers = ("when", "trigger", "result", "what changed", "config hash", "problems")
    return (
        '<section id="reloads"><h2>Reload history <span class="muted">(newest first)</span></h2>'
        + _table(headers, rows, "no reload since the router started")
        + "</section>"
    )


def _document(title: str, body: str, *, refresh: int | None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'{meta}<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def render(snap: Mapping[str, Any], *, refresh: int | None = REFRESH) -> str:
    """The status page of one snapshot; ``refresh=None`` leaves the reloading out."""
    body = "".join(
        section(snap)
        for section in (_summary, _topology, _sources, _sinks, _stored, _orphaned, _reloads)
    )
    return _document(f"router · {snap.get('status') or 'unknown'}", body, refresh=refresh)


def render_login(message: str) -> str:
    """The page a browser gets without the admin token: why, and a form to give it."""
    body = (
        '<h1>router</h1><p id="login-message">'
        f"{e(message)}</p>"
        '<form method="get" id="login"><label>admin.token '
        '<input type="password" name="token" autocomplete="current-password" autofocus>'
        '</label> <button type="submit">Show the status</button></form>'
        '<p class="muted">The token is exchanged for a cookie that opens this page only.</p>'
    )
    return _document("router · admin token needed", body, refresh=None)
