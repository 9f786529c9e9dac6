"""`router run` as a real process: signals, exit codes, a third-party plugin via its entry point."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import trio

from router.testing.process import DaemonProcess
from tests.helpers.cli import write_config

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def example_plugin(tmp_path_factory) -> Path:
    """contrib/example-plugin installed into its own directory (not into the venv)."""
    target = tmp_path_factory.mktemp("site")
    # Build from a copy: pip leaves a build/ directory in the source it builds.
    source = tmp_path_factory.mktemp("src") / "example-plugin"
    shutil.copytree(ROOT / "contrib" / "example-plugin", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


async def test_sigterm_drains_and_exits_zero(tmp_path):
    config = write_config(
        tmp_path / "router.yaml",
        f"""\
        logging: {{level: info, format: json}}
        sources:
          conscent: {{plugin: conscent, auth: none}}
        sinks:
          out: {{plugin: file, path: {tmp_path}/out.ndjson, batch: {{max_wait: 0.01}}}}
        routes: [{{from: conscent, to: out}}]
    """,
    )
    daemon = DaemonProcess(
        ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")]
    )
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            assert (await client.get("/healthz")).status_code == 200
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    names = [e["event"] for e in daemon.logs]
    for step in (
        "daemon.ready",
        "daemon.signal",
        "daemon.stopping",
        "daemon.http_stopped",
        "daemon.sinks_stopped",
        "daemon.stopped",
    ):
        assert step in names
    assert names.index("daemon.http_stopped") < names.index("daemon.sinks_stopped")


async def test_second_daemon_on_the_same_data_dir_refuses_to_start(tmp_path):
    config = write_config(
        tmp_path / "router.yaml",
        f"""\
        logging: {{format: json}}
        sinks:
          out: {{plugin: file, path: {tmp_path}/out.ndjson}}
    """,
    )
    args = ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")]
    first = DaemonProcess(args)
    async with trio.open_nursery() as nursery:
        await first.start(nursery)
        second = await trio.run_process(
            [sys.executable, "-m", "router", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        first.signal(signal.SIGINT)
        assert await first.wait() == 0
    assert second.returncode == 2
    assert b"is in use by another router" in second.stderr


async def test_failing_plugin_stops_startup_naming_plugin_and_hook(tmp_path, example_plugin):
    broken = tmp_path / "broken"
    (broken / "broken_plugin").mkdir(parents=True)
    (broken / "broken_plugin" / "__init__.py").write_text(
        textwrap.dedent("""\
        from router import hookimpl

        @hookimpl
        def router_validators():
            raise ValueError("schema file missing")
    """)
    )
    dist = broken / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[router.plugins]\nbroken = broken_plugin\n")
    result = await trio.run_process(
        [sys.executable, "-m", "router", "plugins"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={"PYTHONPATH": str(broken), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert (
        b"error: plugin 'broken' in hook router_validators: ValueError: schema file missing"
        in result.stderr
    )

    (broken / "broken_plugin" / "__init__.py").write_text("import no_such_module\n")
    result = await trio.run_process(
        [sys.executable, "-m", "router", "plugins"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={"PYTHONPATH": str(broken), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert b"plugin 'broken': cannot import broken_plugin: ModuleNotFoundError" in result.stderr


async def test_third_party_plugin_is_discovered_and_serves_its_route(tmp_path, example_plugin):
    env = {"PYTHONPATH": str(example_plugin)}
    listed = await trio.run_process(
        [sys.executable, "-m", "router", "plugins", "--json"],
        capture_stdout=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["example"]["version"] == "1.0.0"
    assert plugins["example"]["origin"] == "entrypoint"
    assert plugins["example"]["routes"] == ["POST /example/track"]
    assert plugins["example"]["sinks"] == ["webhook"]

    config = write_config(
        tmp_path / "router.yaml",
        f"""\
        logging: {{format: json}}
        sources:
          tracker: {{plugin: example, auth: {{keys: [k-123]}}}}
        sinks:
          out: {{plugin: file, path: {tmp_path}/out.ndjson, batch: {{max_wait: 0.01}}}}
        routes: [{{from: tracker, to: out}}]
        plugins: {{require: ["example>=1.0"]}}
    """,
    )
    daemon = DaemonProcess(
        ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
        env=env,
    )
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            r = await client.post(
                "/example/track",
                json={"event": "signup", "user": "u9"},
                headers={"x-example-key": "k-123"},
            )
            assert r.status_code == 200 and r.json()["ok"] is True
            r = await client.post(
                "/example/track", json={"event": "signup"}, headers={"x-example-key": "k-123"}
            )
            assert r.status_code == 400
            assert r.json() == {"ok": False, "error": "user: required field"}
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    (event,) = [json.loads(line) for line in (tmp_path / "out.ndjson").read_text().splitlines()]
    assert event["type"] == "signup" and event["custom"] is True
    assert event["identity"] == {"user_id": "u9"}


async def test_the_readme_command_serves_the_default_config(tmp_path):
    """`router run` with no arguments, from the repository: /healthz answers 200."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    daemon = DaemonProcess(["run", "--bind", "127.0.0.1:0"], cwd=tmp_path)
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).json()["status"] == "ready"
        daemon.signal(signal.SIGINT)
        assert await daemon.wait() == 0
    assert (tmp_path / "data" / "spool.db").exists()
