"""`router top` in a real 80x24 terminal (tmux) against a running daemon under load."""

from __future__ import annotations

import shlex
import sys

import pytest
import trio
import yaml

from router.testing.daemon import running_daemon
from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream, Reply
from tests.helpers.conscent_traffic import load
from tests.helpers.ports import reserved_port
from tests.helpers.tmux import terminal

RETRY = {"initial_backoff": 0.05, "max_backoff": 0.5, "max_attempts": 1000}


def config(tmp_path, upstream_url: str) -> str:
    """``web`` to ``healthy`` (``/up``) and to ``failing`` (``/down``, answered 503)."""

    def sink(path: str) -> dict:
        return {
            "plugin": "conscent",
            "url": f"{upstream_url}/{path}",
            "api_key": "k",
            "batch": {"max_events": 20, "max_wait": 0.01},
            "retry": RETRY,
        }

    doc = {
        "logging": {"level": "info", "format": "json"},
        "server": {"shutdown_timeout": 2},
        "sources": {"web": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"healthy": sink("up"), "failing": sink("down")},
        "routes": [{"from": "web", "to": "healthy"}, {"from": "web", "to": "failing"}],
    }
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def top(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "router", "top", *args])


def cells(lines: list[str], name: str) -> list[str] | None:
    """The cells of the row that starts with ``name`` (``None`` if none does)."""
    rows = [line.split() for line in lines if line.split()[:1] == [name]]
    return rows[0] if rows else None


def number(cell: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}.get(cell[-1:], 1)
    return float(cell.rstrip("kMG")) * scale


def flowing(lines: list[str]) -> bool:
    """Requests per second shown for ``web``, events pending behind ``failing`` with its error."""
    web, failing, healthy = cells(lines, "web"), cells(lines, "failing"), cells(lines, "healthy")
    return (
        web is not None
        and failing is not None
        and healthy is not None
        and number(web[1]) > 0
        and number(failing[2]) > 0
        and "503" in " ".join(failing[7:])
        and number(healthy[1]) > 0
    )


@pytest.mark.slow
async def test_top_shows_rates_and_the_failing_sink_in_80_columns_and_quits_on_q(tmp_path):
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda r: Reply(503) if r.path.startswith("/down") else None
        args = ["run", "-c", config(tmp_path, upstream.url), "--bind", "127.0.0.1:0"]
        args += ["--data-dir", str(tmp_path / "data")]
        async with trio.open_nursery() as nursery, terminal(80, 24) as term:
            daemon = await DaemonProcess(args).start(nursery)
            stop = trio.Event()
            nursery.start_soon(load, daemon.url, [], 2, stop, "t")
            await term.start(top("--admin", daemon.admin_url, "--interval", "0.3"))
            lines = await term.wait_for(flowing)
            stop.set()

            assert lines[0].startswith("router ") and " up " in lines[0]
            assert lines[1].startswith(daemon.admin_url)
            # Every row is whole: nothing wrapped onto the next line.
            assert all(len(line) <= 80 for line in lines)
            assert len(lines) <= 24
            headings = [line.split()[0] for line in lines if line[:1].isupper()]
            assert headings == ["SOURCES", "SINKS"], lines
            sinks_heading = next(line for line in lines if line.startswith("SINKS"))
            assert sinks_heading.rstrip().endswith("LAST ERROR")
            failing = cells(lines, "failing")
            assert failing is not None and failing[1] == "0"  # nothing delivered

            await term.keys("q")
            assert await term.exit_status() == 0
            daemon.signal()
            assert await daemon.wait() == 0


@pytest.mark.slow
async def test_top_says_it_cannot_reach_the_daemon_keeps_trying_and_ctrl_c_ends_it(tmp_path):
    """A top started before its daemon reads it once it listens."""
    # Kept from other tests' servers until the daemon listens on it.
    with reserved_port() as port:
        admin = f"http://127.0.0.1:{port}"
        async with FakeUpstream.running() as upstream, terminal(80, 24) as term:
            await term.start(top("--admin", admin, "--interval", "0.2"))
            lines = await term.wait_for(lambda ls: "(retrying)" in " ".join(ls))
            assert lines[1] == f"cannot reach {admin}: Connection refused (retrying)"
            assert lines[0] == "router"  # nothing read yet: no tables

            args = ["run", "-c", config(tmp_path, upstream.url), "--bind", "127.0.0.1:0"]
            args += ["--data-dir", str(tmp_path / "data"), "--admin-bind", f"127.0.0.1:{port}"]
            async with trio.open_nursery() as nursery:
                daemon = await DaemonProcess(args).start(nursery)
                lines = await term.wait_for(lambda ls: cells(ls, "failing") is not None)
                assert lines[1].startswith(f"{admin}  ") and lines[1].endswith("q quits")
                await term.keys("C-c")
                assert await term.exit_status() == 130
                daemon.signal()
                assert await daemon.wait() == 0
            assert not any("Traceback" in line for line in await term.text())


async def test_top_ends_with_one_line_when_the_daemon_needs_a_token(tmp_path, sample):
    doc = {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": str(tmp_path / "out.ndjson")}},
        "routes": [{"from": "in", "to": "out"}],
        "admin": {"token": "t0k3n-5c1e"},
    }
    async with (
        running_daemon(doc, data_dir=tmp_path / "d", plugins=sample) as rd,
        terminal(80, 24) as term,
    ):
        await term.start(top("--admin", rd.admin_url))
        assert await term.exit_status() == 1
        lines = await term.text()
    assert lines == [f"router: {rd.admin_url} needs --token (its admin.token is set)"]


@pytest.mark.slow
async def test_top_adds_up_the_workers_of_a_group(tmp_path):
    """With ``--workers 2`` the screen is of both workers (their snapshots merged)."""
    async with FakeUpstream.running() as upstream:
        args = ["run", "-c", config(tmp_path, upstream.url), "--bind", "127.0.0.1:0"]
        args += ["--data-dir", str(tmp_path / "data"), "--workers", "2"]
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(args).start(nursery)
            with trio.fail_after(30):
                while len(daemon.events("daemon.ready")) < 2:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            # One admin URL for the group, or one per worker: top adds them up either way.
            ready = daemon.events("daemon.ready")
            urls = sorted({e["admin"] for e in ready if e.get("admin")}) or [daemon.admin_url]
            command = [sys.executable, "-m", "router", "top", "--once"]
            for url in urls:
                command += ["--admin", url]
            stop = trio.Event()
            nursery.start_soon(load, daemon.url, [], 4, stop, "w")
            with trio.fail_after(30):
                while True:  # until the 10-second rates have seen the load
                    done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
                    assert done.returncode == 0, done.stderr
                    lines = done.stdout.decode().splitlines()
                    if number(cells(lines, "web")[1]) > 0:
                        break
            stop.set()
            daemon.signal()
            assert await daemon.wait() == 0
    assert "  workers 2  " in lines[0], lines
    assert cells(lines, "web") and cells(lines, "healthy") and cells(lines, "failing")
