"""Counters that add up: what the sink counters and /readyz say against what the spool holds.

Each test checks the identity of ``RunningDaemon.reconcile`` (recovered +
accepted + replayed = delivered + dead-lettered + dropped + pending) and,
where it matters, the pending count against the spool table itself.
"""

from __future__ import annotations

import sqlite3

import orjson
import pytest
import trio

import router.spool
from router.deadletters import DeadLetters
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Hold, Reply
from tests.helpers.sample_traffic import relay, settle, users


def spooled(data_dir, sink: str = "up") -> int:
    """Events in the sink's queue table, read with a connection of our own."""
    db = sqlite3.connect(data_dir / "spool.db")
    try:
        (sink_id,) = db.execute("SELECT id FROM sinks WHERE name = ?", (sink,)).fetchone()
        return db.execute(f"SELECT coalesce(sum(count), 0) FROM q_{sink_id}").fetchone()[0]
    finally:
        db.close()


def events(names, kind="view", size=0):
    return {"events": [{"kind": kind, "user": n + "x" * size} for n in names]}


async def test_concurrent_large_writes_are_not_counted_as_replays(tmp_path, sample, monkeypatch):
    # The watcher for other processes' rows scans without pause, so it runs
    # during the daemon's own commits as often as it can.
    monkeypatch.setattr(router.spool, "WATCH_INTERVAL", 0)
    config = relay("http://127.0.0.1:9")  # nothing listens: every event stays pending
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        # Untranslatable events are dead letters at once; replayed during the load,
        # they are the only rows another process adds.
        r = await rd.client.post(
            "/sample/events", json=events([f"odd{i}" for i in range(7)], "odd")
        )
        assert r.status_code == 202
        acked = 0

        def replay() -> int:
            with DeadLetters(tmp_path / "d") as dlq:
                return dlq.replay("up")

        async def client(n: int) -> None:
            nonlocal acked
            for i in range(15):
                names = [f"c{n}-{i}-{j}" for j in range(20)]
                r = await rd.client.post("/sample/events", json=events(names, size=2000))
                assert r.status_code == 202, r.text
                acked += len(names)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for n in range(8):
                    nursery.start_soon(client, n)
                await trio.sleep(0.1)
                assert await trio.to_thread.run_sync(replay) == 7
            while rd.metric("router_sink_events_replayed_total", sink="up") < 7:  # noqa: ASYNC110
                await trio.sleep(0.01)
        await trio.sleep(0.2)  # a few more scans after the last commit
        accounts = rd.reconcile("up")
        ready = (await rd.client.get("/readyz")).json()
        assert accounts["replayed"] == 7, accounts
        pending = acked + 7
        assert accounts["pending"] == pending == spooled(tmp_path / "d"), accounts
        assert ready["sinks"]["up"]["pending"] == pending
        assert rd.metric("router_sink_events_queued", sink="up") == pending
        assert accounts["balance"] == 0


def dead_lettered(rd, sink: str = "up") -> float:
    return rd.reconcile(sink)["dead_lettered"]


async def test_a_refused_request_moves_no_sink_counter(tmp_path, sample):
    config = relay("http://127.0.0.1:9")
    # A second sink with a tiny spool that refuses (503) once full.
    config["sinks"]["tiny"] = {
        **config["sinks"]["up"],
        "spool": {"max_events": 2, "when_full": "block"},
    }
    config["routes"] = [{"from": "in", "to": ["up", "tiny"]}]
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post("/sample/events", json=events(["a", "b"]))
        assert r.status_code == 202
        # "odd" is untranslatable for both sinks: a dead letter each, if stored.
        mixed = {"events": [{"kind": "view", "user": "c"}, {"kind": "odd", "user": "d"}]}
        r = await rd.client.post("/sample/events", json=mixed)
        assert r.status_code == 503 and "spool of sink 'tiny' is full" in r.text
        for sink in ("up", "tiny"):
            accounts = rd.reconcile(sink)
            assert accounts["dead_lettered"] == 0 and accounts["accepted"] == 2, accounts
            assert accounts["balance"] == 0, accounts
        with DeadLetters(tmp_path / "d") as dlq:
            assert dlq.sinks() == {"tiny": 0, "up": 0}


async def test_a_failed_write_moves_no_sink_counter(tmp_path, sample):
    config = relay("http://127.0.0.1:9", spool={"max_events": 100, "when_full": "drop_newest"})
    config["sinks"]["full"] = {
        **config["sinks"]["up"],
        "spool": {"max_events": 1, "when_full": "drop_newest"},
    }
    config["routes"] = [{"from": "in", "to": ["up", "full"]}]
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post("/sample/events", json=events(["first"]))
        assert r.status_code == 202  # the spool of "full" is full from now on
        rd.daemon.resources.spool._db.execute("PRAGMA max_page_count = 1")  # SQLite's "disk full"
        big = [{"kind": "view", "user": "x" * 5000}, {"kind": "odd", "user": "y" * 5000}]
        r = await rd.client.post("/sample/events", json={"events": big})
        assert r.status_code == 503
        for sink in ("up", "full"):
            accounts = rd.reconcile(sink)
            assert accounts["accepted"] == 1 and accounts["dead_lettered"] == 0, accounts
            assert accounts["dropped"] == 0 and accounts["balance"] == 0, accounts
        rd.daemon.resources.spool._db.execute("PRAGMA max_page_count = 1073741823")
        r = await rd.client.post("/sample/events", json={"events": big})
        assert r.status_code == 202
        for sink, dropped in (("up", 0), ("full", 1)):
            accounts = rd.reconcile(sink)
            assert accounts["accepted"] == 3 and accounts["dead_lettered"] == 1, accounts
            assert accounts["dropped"] == dropped and accounts["balance"] == 0, accounts


@pytest.mark.parametrize("buffer", ["disk", "memory"])
async def test_a_poison_event_is_dead_lettered_once_across_a_restart(tmp_path, sample, buffer):
    """A batch split by a 400 dead-letters its poison event, and the daemon stops
    while the rest of the batch is still in flight: after the restart the
    poison event must not be sent and dead-lettered again."""
    async with FakeUpstream.running() as upstream:
        release = trio.Event()
        upstream.handler = lambda r: (
            Reply(400, b'{"error":"bad user"}') if b"poison" in r.body else Hold(release)
        )
        config = relay(upstream.url, buffer=buffer)
        config["server"] = {"shutdown_timeout": 0.5}
        names = ["poison", "held-1", "held-2"]
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            r = await rd.client.post("/sample/events", json=events(names))
            assert r.status_code == 202
            with trio.fail_after(10):
                # the batch of three, then the half with the poison event, then it alone
                await upstream.wait_for(lambda u: u.responses_by_status.get(400, 0) >= 2)
                while rd.reconcile("up")["dead_lettered"] < 1:  # noqa: ASYNC110
                    await trio.sleep(0.01)
                # and the other half is held by the upstream when the daemon stops
                await upstream.wait_for(lambda u: len(u.requests) >= 3)
            accounts = rd.reconcile("up")
            assert accounts["dead_lettered"] == 1 and accounts["balance"] == 0, accounts
        release.set()
        upstream.handler = lambda r: (
            Reply(400, b'{"error":"bad user"}') if b"poison" in r.body else None
        )
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            accounts = await settle(rd)
            assert accounts["recovered"] == 2, accounts
            assert accounts["dead_lettered"] == 0, accounts
        assert {"held-1", "held-2"} <= set(users(upstream))
        with DeadLetters(tmp_path / "d") as dlq:
            letters = dlq.list("up")
        assert [orjson.loads(d.payload)["user"] for d in letters] == ["poison"]
