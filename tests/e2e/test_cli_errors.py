"""A new user's mistakes with `router`: each gets one clear line and exit 2, no traceback.

Every test runs the real command line as a subprocess.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
import trio

from router.quarantine import Quarantine
from router.testing.process import DaemonProcess
from tests.helpers.cli import one_line, run_router, write_config
from tests.helpers.conscent_traffic import ping
from tests.helpers.ports import taken_port

ROOT = Path(__file__).parents[2]
BUSY = "address already in use (another router or program is using it; pick another with --bind)"


def test_check_reports_wrong_typed_values_at_their_lines(tmp_path):
    config = write_config(
        tmp_path / "router.yaml",
        """\
        server:
          bind: 127.0.0.1:99999
        sources:
          a:
            plugin: conscent
            auth: none
            rate_limit: {rate: fast}
          b:
            plugin: segmento
            auth: none
            rate_limit: {rate: 1, burst: lots, key: 7}
          c:
            plugin: endu
            auth: none
            rate_limit: {rate: [1]}
        routes:
          - {from: a, to: 5, filter: nonsense}
        """,
    )
    code, _, err = run_router("check", "-c", str(config))
    assert code == 2
    assert err == [
        f"{config}:2: server.bind: port '99999' of '127.0.0.1:99999' is not a number "
        "from 0 to 65535",
        f"{config}:7: sources.a.rate_limit.rate: must be of number type",
        f"{config}:11: sources.b.rate_limit.burst: must be of integer type",
        f"{config}:11: sources.b.rate_limit.key: must be of string type",
        f"{config}:15: sources.c.rate_limit.rate: must be of number type",
        f"{config}:17: routes[0].filter: must be of dict type",
        f"{config}:17: routes[0].to: must be of ['string', 'list'] type",
    ]


@pytest.mark.parametrize(
    ("bind", "message"),
    [
        ("nonsense", "'nonsense' is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"),
        ("127.0.0.1:99999", "port '99999' of '127.0.0.1:99999' is not a number from 0 to 65535"),
        ("::1:8080", "write an IPv6 address in brackets: [::1]:8080"),
    ],
)
def test_run_with_a_bad_bind_is_one_usage_line(bind, message):
    code, _, err = run_router("run", "--bind", bind)
    assert code == 2
    assert one_line(err) == f"router run: error: argument --bind: {message} (see router run --help)"


def test_run_on_a_busy_port_is_one_line(tmp_path):
    config = write_config(
        tmp_path / "router.yaml", "sinks:\n  f: {plugin: file, path: out.ndjson}\n"
    )
    with taken_port() as port:
        code, _, err = run_router(
            "run", "-c", str(config), "--bind", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)
        )
    assert code == 2
    assert one_line(err) == f"router: error: cannot listen on 127.0.0.1:{port}: {BUSY}"


def test_workers_zero_is_refused_as_the_config_refuses_it(tmp_path):
    code, _, err = run_router("run", "--workers", "0", cwd=tmp_path)
    assert code == 2
    assert one_line(err) == (
        "router run: error: argument --workers: '0' is not a number from 1 to 64 "
        "(see router run --help)"
    )
    assert not (tmp_path / "data").exists()  # nothing was started


@pytest.mark.parametrize(
    "command",
    [["validate", "--vendor", "conscent"], ["translate", "--from", "conscent", "--to", "endu"]],
)
def test_validate_and_translate_name_an_unreadable_file(tmp_path, command):
    code, out, err = run_router(*command, str(tmp_path / "missing.ndjson"))
    assert code == 2 and out == ""
    assert one_line(err) == f"router: error: cannot read {tmp_path}/missing.ndjson: " + (
        "No such file or directory"
    )
    code, out, err = run_router(*command, str(tmp_path))
    assert code == 2 and out == ""
    assert one_line(err) == f"router: error: cannot read {tmp_path}: it is a directory; " + (
        "give an NDJSON file"
    )


def test_translate_refuses_unknown_and_wrong_options(tmp_path):
    events = tmp_path / "in.ndjson"
    events.write_text(json.dumps(ping("u1")) + "\n")
    args = ["translate", "--from", "conscent", "--to", "moloco", str(events)]
    code, out, err = run_router(*args, "-o", "platfrom=web")
    assert code == 2 and out == ""
    line = one_line(err)
    assert line.startswith(
        "router: error: moloco has no option 'platfrom' (did you mean 'platform'?"
    )
    code, out, err = run_router(*args, "-o", "platform=web", "-o", "channel_type=TV")
    assert code == 2 and out == ""
    assert one_line(err) == "router: error: option channel_type: unallowed value TV"
    code, out, err = run_router(*args, "-o", "platform")
    assert code == 2
    assert one_line(err) == "router: error: --option expects KEY=VALUE, got 'platform'"


def test_quarantine_purge_needs_a_source_or_all(tmp_path):
    store = Quarantine(tmp_path / "quarantine.db")
    trio.run(store.add, "a", 1, [({"x": 1}, ["bad"])])
    trio.run(store.add, "b", 1, [({"x": 2}, ["bad"])])
    store.close()
    data = ["--data-dir", str(tmp_path)]
    code, _, err = run_router("quarantine", "purge", *data)
    assert code == 2
    assert one_line(err) == "router: error: purge needs a SOURCE or --all (every source's events)"
    code, _, err = run_router("quarantine", "purge", "a", "--all", *data)
    assert code == 2
    assert one_line(err) == "router: error: purge needs a SOURCE or --all, not both"
    code, _, err = run_router("quarantine", "list", *data)
    assert code == 0 and err == ["2 quarantined events"]
    code, _, err = run_router("quarantine", "purge", "a", *data)
    assert code == 0 and err == ["purged 1 quarantined events"]
    code, _, err = run_router("quarantine", "purge", "--all", *data)
    assert code == 0 and err == ["purged 1 quarantined events"]


def test_every_user_mistake_exits_2(tmp_path):
    """The same convention in every command: 2 for what the user must fix."""
    config = write_config(
        tmp_path / "router.yaml", "sinks:\n  f: {plugin: file, path: out.ndjson}\n"
    )
    events = tmp_path / "in.ndjson"
    events.write_text(json.dumps(ping("u1")) + "\n")
    mistakes = {
        "no such sink": [
            "translate", "--from", "conscent", "--to", "canonical", "--sink", "nope",
            "-c", str(config), str(events),
        ],
        "dlq purge without --id or --all": [
            "dlq", "purge", "f", "-c", str(config), "--data-dir", str(tmp_path),
        ],
        "no quarantine there": ["quarantine", "list", "--data-dir", str(tmp_path / "nowhere")],
        "unknown vendor": ["validate", "--vendor", "nosuch", str(events)],
        "data dir is a file": [
            "run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(events),
        ],
    }  # fmt: skip
    for mistake, args in mistakes.items():
        code, _, err = run_router(*args)
        assert (code, len(err)) == (2, 1), (mistake, err)
        assert err[0].startswith("router: error: "), (mistake, err)


async def test_file_sink_path_is_under_the_data_dir(tmp_path):
    config = write_config(
        tmp_path / "router.yaml",
        """\
        logging: {format: json}
        sources:
          conscent: {plugin: conscent, auth: none}
        sinks:
          out: {plugin: file, path: out.ndjson, batch: {max_wait: 0.01}}
        routes: [{from: conscent, to: out}]
        """,
    )
    data = tmp_path / "elsewhere"
    daemon = DaemonProcess(
        ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(data)], cwd=tmp_path
    )
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            r = await client.post("/collect/event", json={"messageBody": [ping("u1")]})
            assert r.status_code == 201
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    assert not (tmp_path / "out.ndjson").exists()
    (event,) = [json.loads(line) for line in (data / "out.ndjson").read_text().splitlines()]
    assert event["identity"]["user_id"] == "u1"


@pytest.mark.slow
async def test_each_worker_writes_its_own_file(tmp_path):
    config = write_config(
        tmp_path / "router.yaml",
        """\
        logging: {format: json}
        server: {shutdown_timeout: 2}
        sources:
          conscent: {plugin: conscent, auth: none}
        sinks:
          out: {plugin: file, path: out.ndjson, batch: {max_wait: 0.01}}
        routes: [{from: conscent, to: out}]
        """,
    )
    data = tmp_path / "data"
    args = ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--workers", "2"]
    daemon = DaemonProcess([*args, "--data-dir", str(data)], cwd=tmp_path)
    sent = 20
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        limits = httpx.Limits(max_keepalive_connections=0)  # new connections spread over workers
        async with httpx.AsyncClient(base_url=daemon.url, limits=limits) as client:
            for i in range(sent):
                r = await client.post("/collect/event", json={"messageBody": [ping(f"u{i}")]})
                assert r.status_code == 201
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    assert not (tmp_path / "out.ndjson").exists() and not (data / "out.ndjson").exists()
    files = sorted(data.glob("worker-*/out.ndjson"))
    assert files and {f.parent.name for f in files} <= {"worker-0", "worker-1"}
    assert sum(len(f.read_text().splitlines()) for f in files) == sent


async def test_run_without_a_config_works_from_any_directory(tmp_path):
    """The built-in default config: data/ and data/events.ndjson in the current directory."""
    daemon = DaemonProcess(["run", "--bind", "127.0.0.1:0"], cwd=tmp_path)
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            assert (await client.get("/readyz")).json()["status"] == "ready"
            r = await client.post("/collect/event", json={"messageBody": [ping("u1")]})
            assert r.status_code == 201
        daemon.signal(signal.SIGINT)
        assert await daemon.wait() == 0
    assert (tmp_path / "data" / "spool.db").exists()
    (event,) = (tmp_path / "data" / "events.ndjson").read_text().splitlines()
    assert json.loads(event)["identity"]["user_id"] == "u1"


def test_the_documented_default_config_is_the_built_in_one():
    assert (ROOT / "config" / "router.yaml").read_bytes() == (
        ROOT / "router" / "default.yaml"
    ).read_bytes()
