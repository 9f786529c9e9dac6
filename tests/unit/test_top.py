"""top: reading a real daemon's status snapshot, one frame (--once), and every way it can fail."""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import pytest
import trio
import yaml

from router.cli import main
from router.testing.daemon import running_daemon
from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream, Reply
from router.top import AdminUnreachable, Poller, once
from tests.helpers.ports import reserved_port

TOKEN = "top-token-3b9e1d"


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
        ("http://127.0.0.1:{port}/", "http://127.0.0.1:{port}"),
    ],
)
def test_an_admin_option_may_be_a_bind(given, read, capsys, closed_port):
    port = closed_port().rsplit(":", 1)[1]
    given, read = given.format(port=port), read.format(port=port)
    assert main(["top", "--once", "--admin", given]) == 1  # nothing listens there
    assert capsys.readouterr().err == f"router: cannot reach {read}: Connection refused\n"


def test_an_admin_option_that_is_no_address_is_one_line(capsys):
    assert main(["top", "--once", "--admin", "localhost"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("router: error: --admin localhost: not http://HOST:PORT or unix:PATH")


@pytest.fixture
def closed_port():
    """The URL of a loopback port nothing listens on, for the test's duration."""
    with reserved_port() as port:
        yield lambda: f"http://127.0.0.1:{port}"


async def read_once(poller: Poller) -> tuple[int, str, str]:
    """``once`` in a thread: it blocks, and the daemon answering it runs on this loop."""
    out, err = io.StringIO(), io.StringIO()
    code = await trio.to_thread.run_sync(once, poller, out, err)
    return code, out.getvalue(), err.getvalue()


def rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}


async def test_one_frame_shows_what_the_daemon_was_sent(tmp_path, sample, sample_config):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        poller = Poller([rd.admin_url], None)
        try:
            with trio.fail_after(20):
                while True:  # rates need two samples, a second apart, with requests between
                    body = {"events": [{"kind": "view", "user": "u"}] * 4}
                    assert (await rd.client.post("/sample/events", json=body)).status_code == 202
                    snapshot = await trio.to_thread.run_sync(poller.read)
                    if snapshot["sources"]["in"]["requests_per_s"] > 0:
                        break
                    await trio.sleep(0.2)
            code, out, err = await read_once(poller)
        finally:
            poller.close()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("router ") and "ready" in lines[0]
    assert lines[1].startswith(rd.admin_url)
    table = rows(out)
    assert float(table["in"][1]) > 0 and float(table["in"][2]) >= float(table["in"][1])
    assert table["out"][6] == "0"  # no dead letters


async def test_a_rate_limit_refusing_events_is_shown_with_its_rate(tmp_path, sample, sample_config):
    sample_config["sources"]["in"]["rate_limit"] = {"rate": 0.001, "burst": 2}
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        poller = Poller([rd.admin_url], None)
        try:
            statuses = set()
            with trio.fail_after(20):
                while True:
                    body = {"events": [{"kind": "view", "user": "u"}]}
                    statuses.add((await rd.client.post("/sample/events", json=body)).status_code)
                    snapshot = await trio.to_thread.run_sync(poller.read)
                    if snapshot["sources"]["in"]["limited_per_s"] > 0:
                        break
                    await trio.sleep(0.2)
            code, out, _ = await read_once(poller)
        finally:
            poller.close()
    assert statuses == {202, 429}
    assert code == 0
    cells = rows(out)["in"]
    assert cells[5] == "limiting" and float(cells[6].removesuffix("/s,")) > 0
    assert cells[7:10] == ["0.001", "req/s", "b2"]  # then the key, as far as it fits


async def test_an_unreachable_daemon_is_one_line_and_exit_1(closed_port):
    url = closed_port()
    poller = Poller([url], None)
    with pytest.raises(AdminUnreachable, match=rf"^cannot reach {url}: Connection refused$"):
        poller.read()
    code, out, err = await read_once(poller)
    assert (code, out) == (1, "")
    assert err == f"router: cannot reach {url}: Connection refused\n"


async def test_something_that_is_not_a_router_is_said_so():
    async with FakeUpstream.running() as upstream:
        poller = Poller([upstream.url], None)
        upstream.default = Reply(200, {"hello": "world"})
        with pytest.raises(AdminUnreachable, match="answered no status snapshot"):
            await trio.to_thread.run_sync(poller.read)
        upstream.default = Reply(200, b"<html>")
        with pytest.raises(AdminUnreachable, match="answered no status snapshot"):
            await trio.to_thread.run_sync(poller.read)
        upstream.default = Reply(500)
        with pytest.raises(AdminUnreachable, match=r"answered 500 to /admin/status$"):
            await trio.to_thread.run_sync(poller.read)
        poller.close()


def builtin_config(path: Path, admin: dict) -> Path:
    """A config that a ``router run`` subprocess loads (built-in plugins only)."""
    doc = {
        "logging": {"level": "info", "format": "json"},
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": str(path.parent / "out.ndjson")}},
        "routes": [{"from": "in", "to": "out"}],
        "admin": admin,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def test_the_config_names_the_admin_socket_and_token_and_a_401_says_needs_token(tmp_path):
    # A short directory: a unix socket's path has at most 107 bytes.
    with tempfile.TemporaryDirectory(prefix="rtop") as short:
        bind = f"unix:{short}/admin.sock"
        config = builtin_config(tmp_path / "router.yaml", {"bind": bind, "token": TOKEN})
        run = ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--admin-bind", bind]
        run += ["--data-dir", str(tmp_path / "data")]
        top = [sys.executable, "-m", "router", "top", "--once"]
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(run).start(nursery)
            try:
                results = []
                for extra in (
                    ["-c", str(config)],
                    ["--admin", bind],
                    ["--admin", bind, "--token", "no"],
                ):
                    done = await trio.run_process(
                        [*top, *extra], capture_stdout=True, capture_stderr=True, check=False
                    )
                    results.append((done.returncode, done.stdout.decode(), done.stderr.decode()))
            finally:
                daemon.signal()
                assert await daemon.wait() == 0
    (code, out, err), needs, refused = results
    assert (code, err) == (0, ""), err
    assert out.startswith("router ") and "in" in rows(out) and "out" in rows(out)
    assert needs == (1, "", f"router: {bind} needs --token (its admin.token is set)\n")
    assert refused == (1, "", f"router: {bind} refused the token (401): check --token\n")


async def test_several_daemons_are_added_up(tmp_path, sample, sample_config):
    async with (
        running_daemon(sample_config, data_dir=tmp_path / "a", plugins=sample) as one,
        running_daemon(sample_config, data_dir=tmp_path / "b", plugins=sample) as two,
    ):
        for rd, n in ((one, 2), (two, 3)):
            for _ in range(n):
                body = {"events": [{"kind": "view", "user": "u"}]}
                assert (await rd.client.post("/sample/events", json=body)).status_code == 202
        poller = Poller([one.admin_url, two.admin_url], None)
        try:
            snapshot = await trio.to_thread.run_sync(poller.read)
        finally:
            poller.close()
    assert snapshot["workers"] == [0, 0]
    assert snapshot["sources"]["in"]["requests"] == 5.0


def test_without_a_terminal_only_once_is_possible(capsys, closed_port):
    assert main(["top", "--admin", closed_port()]) == 2
    assert capsys.readouterr().err == (
        "router: error: router top draws on a terminal; use --once to print one frame\n"
    )


@pytest.mark.parametrize("interval", ["0", "-1", "soon", "nan", "inf"])
def test_an_interval_must_be_a_positive_number_of_seconds(interval, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["top", "--interval", interval])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{interval!r} is not a number of seconds more than 0" in err
    assert len(err.splitlines()) == 1
