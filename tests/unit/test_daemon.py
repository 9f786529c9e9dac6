"""router.daemon: the lifecycle of one router (lock, open, ready, stop, startup errors)."""

from __future__ import annotations

import os

import pytest
import trio

from router.daemon import Daemon, _lone_error, serve
from router.errors import PluginError, StorageUnusable
from router.storage import lock_data_dir
from router.testing.daemon import build_config
from tests.unit.test_topology import ExplodingPlugin


def test_lone_error_unwraps_a_single_router_error_only():
    inner = StorageUnusable("x", "cannot use x")
    assert _lone_error(ExceptionGroup("a", [ExceptionGroup("b", [inner])])) is inner
    assert _lone_error(ExceptionGroup("a", [inner, ValueError()])) is None
    assert _lone_error(ExceptionGroup("a", [ValueError()])) is None


async def test_readiness_follows_the_lifecycle(tmp_path, sample, sample_config):
    config, registry = build_config(
        {**sample_config, "admin": {"bind": "127.0.0.1:0"}}, plugins=sample
    )
    daemon = Daemon(config, registry, data_dir=tmp_path / "d")
    assert daemon.readiness() == (
        False,
        {"status": "starting", "failing_sinks": [], "sinks": {}},
    )
    seen = []
    with lock_data_dir(daemon.data_dir):
        async with trio.open_nursery() as nursery:
            await nursery.start(daemon.run)
            ready, detail = daemon.readiness()
            seen.append((ready, detail["status"], sorted(detail["sinks"])))
            daemon.stop()
            with trio.fail_after(10):
                while daemon.ready:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            seen.append((daemon.readiness()[0], daemon.readiness()[1]["status"], None))
    assert seen == [(True, "ready", ["out"]), (False, "stopping", None)]


async def test_a_sink_that_cannot_be_built_stops_startup_with_one_error(tmp_path, sample):
    doc = {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {"up": {"plugin": "exploding", "url": "http://127.0.0.1:9"}},
        "routes": [{"from": "in", "to": "up"}],
    }
    doc["server"] = {"bind": "127.0.0.1:0"}
    doc["admin"] = {"bind": "127.0.0.1:0"}
    config, registry = build_config(doc, plugins=[*sample, ("exploding", ExplodingPlugin())])
    with pytest.raises(PluginError, match="cannot start"):  # itself, not in a group
        await serve(config, registry, data_dir=tmp_path / "d")
    # Storage it opened was closed again: the data dir can be taken at once.
    with lock_data_dir(tmp_path / "d"):
        pass


async def test_serve_uses_the_data_dir_it_is_given(tmp_path, sample, sample_config):
    config, registry = build_config(
        {**sample_config, "server": {"bind": "127.0.0.1:0"}, "admin": {"bind": "127.0.0.1:0"}},
        plugins=sample,
    )

    async def stop_at_once():
        return None

    await serve(config, registry, data_dir=tmp_path / "given", shutdown_trigger=stop_at_once)
    assert (tmp_path / "given" / "spool.db").exists()
    assert (tmp_path / "given" / "LOCK").read_text() == str(os.getpid())
