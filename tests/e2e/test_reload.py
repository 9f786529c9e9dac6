"""Reloading a running daemon's config under load: no failed request, no lost event."""

from __future__ import annotations

import copy
import itertools
import signal
from collections import Counter

import pytest
import trio
import yaml

from router.testing.daemon import running_daemon
from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream, Reply
from tests.helpers.sample_traffic import FAST_RETRY

#: How many reloads the test under load makes.
RELOADS = 20


def sink(url: str, path: str, **options) -> dict:
    return {
        "plugin": "sample",
        "url": f"{url}/{path}",
        "batch": {"max_events": 20, "max_wait": 0.01},
        "retry": FAST_RETRY,
        "timeout": 2,
        **options,
    }


def base(url: str) -> dict:
    """``in`` to ``always`` (never changed by any step) and to ``a``."""
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {"always": sink(url, "always"), "a": sink(url, "a")},
        "routes": [{"from": "in", "to": "always"}, {"from": "in", "to": "a"}],
    }


def write(path, doc) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def received(upstream: FakeUpstream, path: str) -> Counter:
    """Users delivered with a 2xx to ``/<path>/ingest``, with how many times each."""
    return Counter(
        e["user"]
        for r in upstream.accepted
        if r.path == f"/{path}/ingest"
        for e in r.json()["events"]
    )


def steps(url: str):
    """Configs, each changing one thing from the one before (cycled)."""
    doc = base(url)
    add_route = copy.deepcopy(doc)
    add_route["routes"].append({"from": "in", "to": "a", "filter": {"types": ["purchase"]}})
    yield "add a route", add_route
    yield "remove a route", copy.deepcopy(doc)
    add_sink = copy.deepcopy(doc)
    add_sink["sinks"]["b"] = sink(url, "b")
    add_sink["routes"].append({"from": "in", "to": "b"})
    yield "add a sink", add_sink
    yield "remove a sink", copy.deepcopy(doc)
    limited = copy.deepcopy(doc)
    limited["sources"]["in"]["rate_limit"] = {"rate": 100000, "burst": 100000}
    yield "change a rate limit", limited
    batch = copy.deepcopy(limited)
    batch["sinks"]["a"]["batch"] = {"max_events": 3, "max_wait": 0.01}
    yield "change a batch size", batch
    filtered = copy.deepcopy(batch)
    filtered["routes"][1]["filter"] = {"types": ["page_view"]}
    yield "change a filter", filtered


@pytest.mark.slow
async def test_reloads_under_load_fail_no_request_and_lose_no_event(tmp_path, sample):
    """20 reloads, one every half second, each changing something, while 4 clients post."""
    async with FakeUpstream.running() as upstream:
        config = tmp_path / "router.yaml"
        write(config, base(upstream.url))
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            statuses: Counter = Counter()
            sent: list[str] = []
            done = trio.Event()
            # Clients pause at the gate so the counters can be read at a quiet moment.
            gate = {"open": trio.Event(), "busy": 0}
            gate["open"].set()

            async def client(n: int) -> None:
                for i in itertools.count():
                    await gate["open"].wait()
                    if done.is_set():
                        return
                    gate["busy"] += 1
                    names = [f"c{n}-{i}-{j}" for j in range(5)]
                    kind = "buy" if i % 3 == 0 else "view"
                    r = await rd.client.post(
                        "/sample/events",
                        json={"events": [{"kind": kind, "user": u} for u in names]},
                    )
                    gate["busy"] -= 1
                    statuses[r.status_code] += 1
                    if r.status_code == 202:
                        sent.extend(names)

            async def quiet_reconcile(what: str) -> None:
                gate["open"] = trio.Event()
                with trio.fail_after(10):
                    while gate["busy"]:  # noqa: ASYNC110
                        await trio.sleep(0.005)
                for name in rd.daemon.resources.queues:
                    assert rd.reconcile(name)["balance"] == 0, (what, name, rd.reconcile(name))
                gate["open"].set()

            results = []
            async with trio.open_nursery() as nursery:
                for n in range(4):
                    nursery.start_soon(client, n)
                plan = itertools.islice(itertools.cycle(steps(upstream.url)), RELOADS)
                for what, doc in plan:
                    await trio.sleep(0.5)
                    write(config, doc)
                    record = await rd.daemon.reload("test")
                    results.append((what, record.result))
                    await quiet_reconcile(what)
                await trio.sleep(0.3)
                done.set()
            assert [r for _, r in results] == ["applied"] * RELOADS, results
            assert set(statuses) == {202}, statuses
            with trio.fail_after(30):
                while any(  # noqa: ASYNC110
                    rd.daemon.resources.queues[s].pending_events for s in rd.topology.sinks
                ):
                    await trio.sleep(0.05)
            always = received(upstream, "always")
            # Every acknowledged event reached the sink every config routed it to.
            assert set(sent) <= set(always), len(set(sent) - set(always))
            for name in rd.daemon.resources.queues:
                assert rd.reconcile(name)["balance"] == 0, name
            # Removed sinks kept what they had, and it was delivered or is still queued.
            assert rd.metric("router_config_reloads_total", result="applied") == RELOADS


async def test_an_invalid_config_changes_nothing_and_says_why(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        config = tmp_path / "router.yaml"
        write(config, base(upstream.url))
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            before = rd.topology
            broken = base(upstream.url)
            broken["sinks"]["a"]["batch"] = {"max_events": "many"}
            write(config, broken)
            record = await rd.daemon.reload("test")
            assert record.result == "rejected"
            assert any("sinks.a.batch.max_events" in p for p in record.problems), record.problems
            assert any(str(config) in p for p in record.problems)
            assert rd.topology is before and rd.daemon.config is before.config
            r = await rd.client.post(
                "/sample/events", json={"events": [{"kind": "view", "user": "u"}]}
            )
            assert r.status_code == 202
            assert rd.metric("router_config_reloads_total", result="rejected") == 1
            assert rd.daemon.reloads.to_list()[-1]["result"] == "rejected"


async def test_a_removed_sink_is_orphaned_and_delivers_when_restored(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        config = tmp_path / "router.yaml"
        doc = base(upstream.url)
        write(config, doc)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            upstream.script(*[Reply(503)] * 10_000)  # nothing is delivered for now
            names = [f"u{i}" for i in range(30)]
            r = await rd.client.post(
                "/sample/events", json={"events": [{"kind": "view", "user": n} for n in names]}
            )
            assert r.status_code == 202
            removed = copy.deepcopy(doc)
            del removed["sinks"]["a"]
            removed["routes"] = [{"from": "in", "to": "always"}]
            write(config, removed)
            record = await rd.daemon.reload("test")
            assert record.result == "applied" and record.changes.removed["sinks"] == ("a",)
            # Its runner stops; what it held goes back to the queue.
            with trio.fail_after(10):
                while rd.daemon.orphaned().get("a") != 30:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            ready = (await rd.client.get("/readyz")).json()
            assert ready["orphaned_sinks"] == {"a": 30}
            upstream.clear_script()
            write(config, doc)
            assert (await rd.daemon.reload("test")).result == "applied"
            with trio.fail_after(20):
                while set(received(upstream, "a")) != set(names):  # noqa: ASYNC110
                    await trio.sleep(0.02)
            assert "orphaned_sinks" not in (await rd.client.get("/readyz")).json()
            assert rd.reconcile("a")["balance"] == 0


async def test_settings_only_a_restart_applies_are_reported_and_the_rest_applied(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        config = tmp_path / "router.yaml"
        doc = base(upstream.url)
        write(config, doc)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            changed = copy.deepcopy(doc)
            changed["server"] = {"max_connections": 7, "max_json_depth": 5}
            changed["sources"]["in"]["prefix"] = "/v2"
            write(config, changed)
            record = await rd.daemon.reload("test")
            assert record.result == "applied"
            assert record.changes.restart_required == ("server.max_connections",)
            assert rd.daemon.config.server.max_connections != 7
            assert rd.daemon.config.server.max_json_depth == 5
            deep = b'{"events": [{"kind": "view", "user": "u", "n": [[[[[[1]]]]]]}]}'
            assert (await rd.client.post("/v2/sample/events", content=deep)).status_code == 400
            again = await rd.daemon.reload("test")
            assert again.result == "unchanged"


@pytest.mark.slow
async def test_sighup_and_watch_reload_a_router_process(tmp_path):
    """``router run``: SIGHUP reloads; with ``--watch``, saving the file does."""
    config = tmp_path / "router.yaml"
    doc = {
        "server": {"bind": "127.0.0.1:0"},
        "logging": {"format": "json"},
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"up": {"plugin": "file", "path": str(tmp_path / "out.ndjson")}},
        "routes": [{"from": "in", "to": "up"}],
    }
    write(config, doc)
    args = ["run", "-c", str(config), "--data-dir", str(tmp_path / "d"), "--watch"]
    async with trio.open_nursery() as nursery:
        daemon = await DaemonProcess(args).start(nursery)
        doc["sources"]["in"]["prefix"] = "/one"
        write(config, doc)  # --watch
        with trio.fail_after(20):
            while not daemon.events("config.reload_applied"):  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert daemon.events("config.reload_applied")[0]["trigger"] == "watch"
        doc["sources"]["in"]["prefix"] = "/two"
        write(config, doc)
        with trio.fail_after(20):
            while len(daemon.events("config.reload_applied")) < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)
        daemon.signal(signal.SIGHUP)  # nothing changed since: unchanged
        with trio.fail_after(20):
            while not daemon.events("config.reload_unchanged"):  # noqa: ASYNC110
                await trio.sleep(0.05)
        assert daemon.events("config.reload_unchanged")[0]["trigger"] == "signal"
        doc["sinks"]["up"]["batch"] = {"max_events": "lots"}
        write(config, doc)
        with trio.fail_after(20):
            while not daemon.events("config.reload_rejected"):  # noqa: ASYNC110
                await trio.sleep(0.05)
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0


@pytest.mark.slow
async def test_sighup_reloads_every_worker(tmp_path):
    config = tmp_path / "router.yaml"
    doc = {
        "logging": {"format": "json"},
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"up": {"plugin": "file", "path": str(tmp_path / "out.ndjson")}},
        "routes": [{"from": "in", "to": "up"}],
    }
    write(config, doc)
    args = ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--workers", "2"]
    args += ["--data-dir", str(tmp_path / "d")]
    async with trio.open_nursery() as nursery:
        daemon = await DaemonProcess(args).start(nursery)
        with trio.fail_after(30):
            while len(daemon.events("daemon.ready")) < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)
        doc["sinks"]["up"]["batch"] = {"max_events": 10}
        write(config, doc)
        daemon.signal(signal.SIGHUP)
        with trio.fail_after(30):
            while len(daemon.events("config.reload_applied")) < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)
        applied = daemon.events("config.reload_applied")
        assert {e["worker"] for e in applied} == {0, 1}
        assert all(e["changed"] == {"sinks": ["up"]} and not e["restart_required"] for e in applied)
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0


@pytest.mark.redis
async def test_a_first_redis_user_by_reload_is_rejected_with_the_reason(
    tmp_path, sample, redis_prefix
):
    from router.testing.redis import REDIS_URL

    async with FakeUpstream.running() as upstream:
        config = tmp_path / "router.yaml"
        doc = base(upstream.url)
        write(config, doc)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            shared = copy.deepcopy(doc)
            shared["redis"] = {"url": REDIS_URL, "prefix": redis_prefix}
            shared["sinks"]["r"] = sink(upstream.url, "r", buffer="redis")
            shared["routes"].append({"from": "in", "to": "r"})
            write(config, shared)
            record = await rd.daemon.reload("test")
            # A redis section takes effect on restart: the sink cannot use one yet.
            assert record.result == "rejected"
            assert record.problems == (
                "sinks.r needs Redis, and the running router has none: a redis section "
                "takes effect on restart",
            )
            assert "r" not in rd.topology.sinks and "r" not in rd.daemon.resources.queues


@pytest.mark.redis
async def test_reloads_keep_a_redis_buffered_sinks_stream(tmp_path, sample, redis_prefix):
    from router.testing.redis import REDIS_URL

    async with FakeUpstream.running() as upstream:
        config = tmp_path / "router.yaml"
        doc = base(upstream.url)
        doc["redis"] = {"url": REDIS_URL, "prefix": redis_prefix}
        doc["sinks"]["r"] = sink(upstream.url, "r", buffer="redis")
        doc["routes"].append({"from": "in", "to": "r"})
        write(config, doc)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            upstream.script(*[Reply(503)] * 10_000)
            names = [f"u{i}" for i in range(20)]
            r = await rd.client.post(
                "/sample/events", json={"events": [{"kind": "view", "user": n} for n in names]}
            )
            assert r.status_code == 202
            changed = copy.deepcopy(doc)
            changed["sinks"]["r"]["batch"] = {"max_events": 4, "max_wait": 0.01}
            write(config, changed)
            assert (await rd.daemon.reload("test")).result == "applied"
            upstream.clear_script()
            with trio.fail_after(30):
                while set(received(upstream, "r")) != set(names):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            after = [f"v{i}" for i in range(20)]
            r = await rd.client.post(
                "/sample/events", json={"events": [{"kind": "view", "user": n} for n in after]}
            )
            assert r.status_code == 202
            with trio.fail_after(30):
                while not set(after) <= set(received(upstream, "r")):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            later = [
                r.json()["events"]
                for r in upstream.accepted
                if r.path == "/r/ingest" and r.json()["events"][0]["user"].startswith("v")
            ]
            assert later and max(map(len, later)) <= 4  # sent with the new batch size
            with trio.fail_after(10):
                while rd.daemon.resources.queues["r"].pending_events:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            assert rd.reconcile("r")["balance"] == 0
