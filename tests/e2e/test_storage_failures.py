"""A disk that fills while the daemon serves: 503 + Retry-After, unready, nothing lost.

The data directory is a small tmpfs that a test fills with a real file, so
SQLite gets ENOSPC from the kernel; freeing it is what lets the daemon recover.
"""

from __future__ import annotations

import orjson
import structlog
import trio

import router.resources
import router.spool
from router.spool import connect
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Hold
from tests.helpers.conscent_traffic import ping
from tests.helpers.sample_traffic import FAST_RETRY, post, settle, users
from tests.helpers.storage_faults import fill, immutable, tmpfs


def config(url: str, out: str) -> dict:
    """sample -> sample sink at ``url``; conscent -> a file sink at ``out``."""
    return {
        "sources": {
            "in": {"plugin": "sample", "auth": "none"},
            "c": {"plugin": "conscent", "auth": "none"},
        },
        "sinks": {
            "up": {
                "plugin": "sample",
                "url": url,
                "batch": {"max_events": 20, "max_wait": 0.01},
                "retry": FAST_RETRY,
                "timeout": 5,
            },
            "out": {"plugin": "file", "path": out},
        },
        "routes": [{"from": "in", "to": "up"}, {"from": "c", "to": "out"}],
    }


async def wait_until(condition, within: float = 10) -> None:
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.02)


async def test_a_disk_that_fills_while_serving_answers_503_and_loses_nothing(
    tmp_path, sample, monkeypatch
):
    monkeypatch.setattr(router.spool, "PROBE_INTERVAL", 0.05)
    monkeypatch.setattr(router.resources, "PROBE_INTERVAL", 0.05)
    release = trio.Event()
    with tmpfs(tmp_path / "fs", "2m") as fs:
        spool_path = fs / "data" / "spool.db"
        async with FakeUpstream.running(default=Hold(release)) as upstream:
            cfg = config(upstream.url, str(tmp_path / "out.ndjson"))
            async with running_daemon(cfg, data_dir=fs / "data", plugins=sample) as rd:
                sent = await post(rd.client, [f"a{i}" for i in range(10)])
                with trio.fail_after(10):
                    await upstream.wait_for(1)  # a batch in flight
                filler = fill(fs)
                with structlog.testing.capture_logs() as logs:
                    # Delivered while the disk is full: its ack cannot be written yet.
                    release.set()
                    with trio.fail_after(10):  # the failed ack alone makes it unready
                        while (await rd.client.get("/readyz")).status_code != 503:  # noqa: ASYNC110
                            await trio.sleep(0.02)
                    for i in range(5):
                        r = await rd.client.post(
                            "/sample/events", json={"events": [{"kind": "view", "user": f"f{i}"}]}
                        )
                        assert r.status_code == 503
                        assert r.headers["retry-after"] == "5"
                        assert r.json() == {
                            "sample_error": "could not store the events; retry later"
                        }
                    r = await rd.client.post("/collect/event", json={"messageBody": [ping("c1")]})
                    assert r.status_code == 503 and r.headers["retry-after"] == "5"
                    assert r.json() == {
                        "error": "Service Unavailable",
                        "message": "could not store the events; retry later",
                        "statusCode": 503,
                    }
                    r = await rd.client.get("/readyz")
                    assert r.status_code == 503 and r.headers["retry-after"] == "1"
                    body = r.json()
                    assert body["status"] == "storage_failing"
                    assert body["reason"].startswith(f"no space left to write {spool_path} ")
                    assert body["storage_errors"] == [body["reason"]]
                failed = [e for e in logs if e["event"] == "storage.write_failed"]
                assert [e["path"] for e in failed] == [str(spool_path)]  # once, not per request
                assert not [e for e in logs if e["log_level"] == "error" and e is not failed[0]]
                # Space comes back: readiness sees it without any request (a probe write).
                filler.unlink()
                await wait_until(lambda: rd.daemon.readiness()[0])
                r = await rd.client.get("/readyz")
                assert r.status_code == 200 and r.json()["status"] == "ready"
                sent += await post(rd.client, ["after"])
                accounts = await settle(rd)
            assert set(users(upstream)) == set(sent)
            assert accounts["accepted"] == len(sent) == accounts["delivered"]
        # The acks written late are on disk: a restart would deliver nothing again.
        db = connect(spool_path)
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'q_%'")]
        assert tables and all(
            db.execute(f"SELECT count(*) FROM {t}").fetchone() == (0,) for t in tables
        )
        db.close()


async def test_a_spool_that_becomes_unwritable_while_serving(tmp_path, sample, monkeypatch):
    monkeypatch.setattr(router.spool, "PROBE_INTERVAL", 0.05)
    async with FakeUpstream.running() as upstream:
        cfg = config(upstream.url, str(tmp_path / "out.ndjson"))
        async with running_daemon(cfg, data_dir=tmp_path / "data", plugins=sample) as rd:
            sent = await post(rd.client, ["before"])
            await settle(rd)
            spool = tmp_path / "data" / "spool.db"
            with immutable(spool, spool.with_name("spool.db-wal")):
                for i in range(3):
                    r = await rd.client.post(
                        "/sample/events", json={"events": [{"kind": "view", "user": f"x{i}"}]}
                    )
                    assert r.status_code == 503 and r.headers["retry-after"] == "5"
                r = await rd.client.get("/readyz")
                assert r.status_code == 503
                assert r.json()["reason"].startswith(f"{spool} is not writable")
            await wait_until(lambda: rd.daemon.readiness()[0])
            sent += await post(rd.client, ["after"])
            await settle(rd)
        assert set(users(upstream)) == set(sent)


async def test_a_file_sink_on_a_full_disk_retries_whole_batches(tmp_path, sample, sample_config):
    with tmpfs(tmp_path / "fs", "1m") as fs:
        out = fs / "out.ndjson"
        sink = sample_config["sinks"]["out"]
        sink.update(path=str(out), retry=FAST_RETRY, batch={"max_events": 200, "max_wait": 0.05})
        async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
            filler = fill(fs, leave=4096)  # room for a part of a batch only
            with structlog.testing.capture_logs() as logs:
                sent = await post(rd.client, [f"u{i}-" + "x" * 100 for i in range(100)])
                await wait_until(lambda: rd.metric("router_sink_events_retried_total", sink="out"))
            filler.unlink()
            await settle(rd, sink="out")
        got = [orjson.loads(line)["identity"]["user_id"] for line in out.read_bytes().splitlines()]
    assert got == sent  # whole lines, each once, in order
    assert not [e for e in logs if e["event"] == "sink.plugin_error"]
    (failure, *_) = [e for e in logs if e["event"] == "sink.send_failed"]
    assert failure["error"].startswith(f"no space left to write {out} ")
