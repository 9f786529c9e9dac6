"""topview: a status snapshot drawn at 80x24, read back as text."""

from __future__ import annotations

import time

from rich.console import Console

from router.status import merge
from router.topview import render

NOW = 1_800_000_000.0


def source(**fields):
    return {
        "plugin": "sample",
        "requests": 0.0,
        "events_accepted": 0.0,
        "requests_per_s": 0.0,
        "events_per_s": 0.0,
        "rejects_per_s": 0.0,
        "p99_seconds": None,
        "rate_limit": None,
        **fields,
    }


def sink(**fields):
    return {
        "plugin": "sample",
        "delivered": 0.0,
        "retried": 0.0,
        "dead_lettered": 0.0,
        "delivered_per_s": 0.0,
        "pending": 0,
        "oldest_age_seconds": None,
        "paused_until": None,
        "failing_for": 0.0,
        "last_error": None,
        "rate_limit": None,
        **fields,
    }


def snapshot(sources=None, sinks=None, **fields):
    return {
        "version": "0.1.0",
        "time": NOW,
        "uptime_seconds": 3725.0,
        "workers": [0],
        "status": "ready",
        "ready": True,
        "sources": sources if sources is not None else {"web": source()},
        "sinks": sinks if sinks is not None else {"out": sink()},
        "routes": [],
        "orphaned": {},
        "storage_errors": [],
        "reloads": [],
        **fields,
    }


def screen(data, width=80, height=24, **options) -> list[str]:
    console = Console(record=True, width=width, height=height)
    console.print(render(data, width=width, height=height, now=NOW, **options))
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines), [len(line) for line in lines]
    if height is not None:
        assert len(lines) <= height, lines
    return [line.rstrip() for line in lines]


def row(lines: list[str], name: str) -> list[str]:
    """The cells of the table row that starts with ``name``."""
    (found,) = [line.split() for line in lines if line.split()[:1] == [name]]
    return found


def test_the_header_says_version_status_workers_uptime_and_the_last_reload():
    reload_at = NOW - 30
    lines = screen(
        snapshot(status="degraded", reloads=[{"at": reload_at, "result": "rejected"}]),
        target="http://127.0.0.1:9091",
    )
    clock = time.strftime("%H:%M:%S", time.localtime(reload_at))
    assert lines[0] == f"router 0.1.0  degraded  1 worker  up 1h02m  reload {clock} rejected"
    assert lines[1].startswith("http://127.0.0.1:9091  ") and lines[1].endswith("q quits")


def test_a_source_row_has_its_rates_p99_and_rate_limit():
    limit = {"rate": 100, "burst": 200, "key": "ip", "unit": "requests", "backend": "redis"}
    sources = {
        "web": source(
            requests_per_s=12.34, events_per_s=1234.0, rejects_per_s=0.5, p99_seconds=0.025
        ),
        "app": source(rate_limit=limit),
    }
    lines = screen(snapshot(sources=sources))
    assert lines[3].split() == ["SOURCES", "(2)", "REQ/S", "EV/S", "REJ/S", "P99", "RATE", "LIMIT"]
    assert row(lines, "web") == ["web", "12", "1.2k", "0.5", "25ms", "-"]
    assert row(lines, "app") == [
        *("app", "0", "0", "0", "-", "100", "req/s", "b200", "per", "ip", "redis")
    ]


def test_a_limiter_refusing_events_says_so_before_its_settings():
    limit = {"rate": 100, "burst": 200, "key": "ip", "unit": "events", "backend": "memory"}
    sources = {"web": source(rate_limit=limit, limited_per_s=12.0, rejects_per_s=12.0)}
    assert row(screen(snapshot(sources=sources)), "web")[5:] == [
        *("limiting", "12/s,", "100", "ev/s", "b200", "per", "ip")
    ]
    narrow = row(screen(snapshot(sources=sources), width=60), "web")
    assert narrow[5:7] == ["limiting", "12/s,"] and narrow[-1].endswith("…")


def test_a_failing_sink_shows_pending_age_retries_pause_dead_letters_and_its_error():
    paused = NOW + 30
    sinks = {
        "down": sink(
            pending=1234,
            oldest_age_seconds=75.0,
            retried=4321.0,
            dead_lettered=3.0,
            paused_until=paused,
            failing_for=12.0,
            last_error="503 Service Unavailable",
        ),
        "up": sink(delivered_per_s=55.0, delivered=9999.0),
    }
    lines = screen(snapshot(sinks=sinks))
    header = next(line for line in lines if line.startswith("SINKS"))
    assert header.split() == [
        *("SINKS", "(2)", "DELIV/S", "PEND", "AGE", "RETRY", "PAUSED", "DEAD", "LAST", "ERROR")
    ]
    clock = time.strftime("%H:%M:%S", time.localtime(paused))
    assert row(lines, "down") == [
        *("down", "0", "1.2k", "1m", "4.3k", clock, "3", "503", "Service", "Unavailable")
    ]
    # The age is unknown until the queue reports it; a past pause is no pause.
    assert row(lines, "up") == ["up", "55", "0", "-", "0", "-", "0"]
    lines = screen(snapshot(sinks={"down": sink(paused_until=NOW - 1)}))
    assert row(lines, "down")[5] == "-"


def test_stored_dead_letters_are_shown_when_the_snapshot_has_them():
    sinks = {"out": sink(dead_lettered=3.0, dead_letters_stored=41)}
    assert row(screen(snapshot(sinks=sinks)), "out")[6] == "41"


def test_long_names_and_errors_are_cut_with_an_ellipsis_to_fit_80_columns():
    long_source = "a-source-with-a-name-far-longer-than-any-column-could-hold"
    long_sink = "a-sink-with-a-very-long-name-indeed"
    error = "HTTP 503 from https://api.example.com/v1/collect: " + "x" * 200
    lines = screen(
        snapshot(
            sources={long_source: source(requests_per_s=5.0)},
            sinks={long_sink: sink(last_error=error, failing_for=1.0, pending=7)},
        )
    )
    (source_row,) = [line for line in lines if line.startswith("a-source")]
    (sink_row,) = [line for line in lines if line.startswith("a-sink")]
    assert "…" in source_row.split()[0] and long_source not in source_row
    assert source_row.split()[1] == "5.0"
    assert sink_row.split()[0].endswith("…") and sink_row.split()[2] == "7"
    assert "HTTP 503" in sink_row and sink_row.endswith("…")


def test_an_error_spanning_lines_stays_on_its_row():
    sinks = {"out": sink(last_error="line one\nline two\n\tline three", failing_for=1.0)}
    lines = screen(snapshot(sinks=sinks))
    assert " ".join(row(lines, "out")[7:]) == "line one line two line three"


def test_more_rows_than_fit_are_counted():
    sources = {f"src{i:02d}": source() for i in range(30)}
    sinks = {f"sink{i:02d}": sink() for i in range(30)}
    lines = screen(snapshot(sources=sources, sinks=sinks))
    assert len(lines) == 24
    more = [line.strip() for line in lines if line.strip().startswith("+")]
    assert more == ["+22 more", "+22 more"]  # 8 rows of each, then the count of the rest
    assert [line.split()[0] for line in lines if line.startswith("src")][-1] == "src07"
    assert [line.split()[0] for line in lines if line.startswith("sink")][-1] == "sink07"


def test_a_short_table_leaves_its_rows_to_the_other():
    sources = {"web": source()}
    sinks = {f"sink{i:02d}": sink() for i in range(40)}
    lines = screen(snapshot(sources=sources, sinks=sinks))
    assert "web" in [line.split()[0] for line in lines if line]
    assert [line.strip() for line in lines if line.strip().startswith("+")] == ["+24 more"]


def test_without_a_height_every_row_is_shown():
    sinks = {f"sink{i:02d}": sink() for i in range(40)}
    lines = screen(snapshot(sinks=sinks), height=None)
    assert sum(line.startswith("sink") for line in lines) == 40
    assert not any(line.strip().startswith("+") for line in lines)


def test_sink_limits_orphaned_queues_and_storage_errors_have_a_line_each():
    limit = {"requests_per_second": 5, "events_per_second": 50.5, "backend": "memory"}
    lines = screen(
        snapshot(
            sinks={"out": sink(rate_limit=limit)},
            orphaned={"gone": 12, "old": 3000},
            storage_errors=["spool.db: disk full", "quarantine.db: disk full"],
            status="storage_failing",
        )
    )
    assert "sink limits: out 5 req/s 50.5 ev/s" in lines
    assert "orphaned queues: gone 12, old 3.0k" in lines
    assert "storage: spool.db: disk full (+1 more)" in lines


def test_unreachable_before_any_snapshot_is_the_error_alone():
    lines = screen(None, error="cannot reach http://127.0.0.1:9091: Connection refused")
    assert lines == [
        "router",
        "cannot reach http://127.0.0.1:9091: Connection refused (retrying)",
    ]


def test_unreachable_after_a_snapshot_keeps_showing_it_under_the_error():
    data = snapshot(sources={"web": source(requests_per_s=3.0)})
    lines = screen(data, error="cannot reach http://127.0.0.1:9091: Connection refused")
    assert lines[1].endswith("(retrying)")
    assert row(lines, "web")[1] == "3.0"


def test_workers_merged_are_counted_in_the_header():
    one = snapshot(sources={"web": source(requests_per_s=2.0)}, workers=[0])
    two = snapshot(sources={"web": source(requests_per_s=3.5)}, workers=[1])
    lines = screen(merge([one, two]))
    assert "  workers 2  " in lines[0]
    assert row(lines, "web")[1] == "5.5"


def test_a_starting_daemon_with_no_parts_has_empty_tables():
    lines = screen(snapshot(sources={}, sinks={}, status="starting"))
    assert "starting" in lines[0]
    assert [line for line in lines if line.startswith(("SOURCES", "SINKS"))] == [
        "SOURCES (0)  REQ/S   EV/S  REJ/S    P99 RATE LIMIT",
        "SINKS (0) DELIV/S   PEND   AGE RETRY   PAUSED  DEAD LAST ERROR",
    ]


def test_numbers_stay_within_their_columns():
    huge = source(requests_per_s=12_345_678.0, events_per_s=9.96, p99_seconds=12.5)
    lines = screen(snapshot(sources={"web": huge}))
    assert row(lines, "web")[1:5] == ["12M", "10", "0", "12s"]
