"""DaemonProcess: ``router run`` as a child process, ready once it logged daemon.ready."""

from __future__ import annotations

import signal
import textwrap

import httpx
import pytest
import trio

from router.testing.process import DaemonProcess

ENV = {"ROUTER_DISABLE_PLUGIN_AUTOLOAD": "1"}


async def test_start_returns_once_ready_with_the_bound_url_and_the_logs(tmp_path):
    config = tmp_path / "router.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        logging: {{level: info, format: json}}
        sources: {{in: {{plugin: conscent, auth: none}}}}
        sinks: {{out: {{plugin: file, path: {tmp_path}/out.ndjson}}}}
        routes: [{{from: in, to: out}}]
        """)
    )
    args = ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")]
    daemon = DaemonProcess(args, env=ENV)
    async with trio.open_nursery() as nursery:
        await daemon.start(nursery)
        assert daemon.url.startswith("http://127.0.0.1:")
        (ready,) = daemon.events("daemon.ready")
        assert ready["binds"] == [daemon.url]
        async with httpx.AsyncClient(base_url=daemon.url) as client:
            assert (await client.get("/healthz")).status_code == 200
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0


async def test_a_daemon_that_exits_before_it_is_ready_is_an_error_with_its_output(tmp_path):
    missing = tmp_path / "missing.yaml"
    daemon = DaemonProcess(["run", "-c", str(missing), "--bind", "127.0.0.1:0"], env=ENV)
    async with trio.open_nursery() as nursery:
        with pytest.raises(RuntimeError, match="daemon exited before it was ready") as caught:
            await daemon.start(nursery)
    assert str(missing) in str(caught.value)
    assert daemon.process.returncode == 2
