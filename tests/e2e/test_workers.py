"""`router run --workers N`: one socket, N daemon processes, nothing lost when N shrinks."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
import trio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream
from tests.helpers.cli import run_router, user_error, write_config
from tests.helpers.conscent_traffic import delivered, ping, relay_config
from tests.helpers.ports import taken_port


async def post_many(url: str, n: int, prefix: str) -> list[str]:
    sent = []
    limits = httpx.Limits(max_keepalive_connections=0)  # new connections spread over workers
    async with httpx.AsyncClient(base_url=url, limits=limits) as client:
        for i in range(n):
            user = f"{prefix}{i}"
            r = await client.post("/collect/event", json={"messageBody": [ping(user)]})
            assert r.status_code == 201
            sent.append(user)
    return sent


async def test_two_workers_share_the_port_and_a_smaller_group_drains_their_spools(tmp_path):
    data = tmp_path / "data"
    async with FakeUpstream.running() as upstream:
        upstream.refuse()
        path = relay_config(
            tmp_path,
            upstream.url,
            level="debug",
            api_key=None,
            batch={"max_events": 50, "max_wait": 0.01},
            retry={"initial_backoff": 0.05, "max_backoff": 0.5, "max_attempts": 1000},
        )
        args = [
            "run",
            "-c",
            path,
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--data-dir",
            str(data),
        ]
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(args).start(nursery)
            with trio.fail_after(30):
                while len(daemon.events("daemon.ready")) < 2:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            sent = await post_many(daemon.url, 60, "w")
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        served = {e.get("worker") for e in daemon.events("ingest.request")}
        assert served == {0, 1}, "the kernel should spread connections over both workers"
        assert (data / "worker-0" / "spool.db").exists() and (
            data / "worker-1" / "spool.db"
        ).exists()

        await upstream.accept()
        args[args.index("2")] = "1"
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(args).start(nursery)
            with trio.fail_after(30):
                await upstream.wait_for(lambda u: set(sent) <= delivered(u))
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        assert daemon.events("daemon.draining"), "worker 0 should drain worker-1's spool"


def test_dlq_points_at_the_workers_spools(tmp_path, capsys):
    from router.cli import main
    from router.spool import connect

    for i in (0, 1):
        (tmp_path / f"worker-{i}").mkdir()
        connect(tmp_path / f"worker-{i}" / "spool.db").close()
    assert main(["dlq", "list", "out", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {tmp_path / 'worker-0'} (worker-0, worker-1)" in err


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """A Prometheus text's samples by (name, labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def group_args(config: str | Path, data: Path, *more: str) -> list[str]:
    base = ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--workers", "2"]
    return [*base, "--data-dir", str(data), *more]


async def test_a_scrape_of_two_workers_adds_up_on_the_admin_and_the_ingest_port(tmp_path):
    # Too long for a unix socket path below it: the private sockets go elsewhere.
    data = tmp_path / ("d" * 100)
    assert len(str(data / "worker-0" / "admin.sock")) > 108
    k = 80
    async with FakeUpstream.running() as upstream:
        path = relay_config(tmp_path, upstream.url, level="debug")
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(group_args(path, data)).start(nursery)
            assert len(daemon.events("daemon.ready")) == 2, "ready means every worker is"
            (ready,) = daemon.events("workers.ready")
            assert ready["admin"] == daemon.admin_url and ready["binds"] == [daemon.url]
            sent = await post_many(daemon.url, k, "m")
            await upstream.wait_for(lambda u: set(sent) <= delivered(u))
            async with (
                httpx.AsyncClient(base_url=daemon.admin_url) as admin,
                httpx.AsyncClient(base_url=daemon.url) as ingest,
            ):
                # Delivered is counted once the upstream's answer is read: poll for it.
                with trio.fail_after(30):
                    while True:
                        found = samples((await admin.get("/metrics")).text)
                        if value(found, "router_sink_events_delivered_total", sink="conscent") >= k:
                            break
                        await trio.sleep(0.05)
                scrapes = [found, samples((await ingest.get("/metrics")).text)]
                status = (await admin.get("/admin/status")).json()
                page = (await admin.get("/")).text
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    served = {e.get("worker") for e in daemon.events("ingest.request")}
    assert served == {0, 1}, "both workers should have taken some of the events"
    # The status page is the whole group's too.
    assert "worker 0, 1" in page
    for found in scrapes:
        assert value(found, "router_events_received_total", source="conscent") == k
        assert value(found, "router_events_accepted_total", source="conscent") == k
        assert value(found, "router_sink_events_accepted_total", sink="conscent") == k
        delivered_ = value(found, "router_sink_events_delivered_total", sink="conscent")
        pending = value(found, "router_sink_events_queued", sink="conscent")
        assert (delivered_, pending) == (k, 0)
        assert value(found, "router_worker_info", worker="0") == 1
        assert value(found, "router_worker_info", worker="1") == 1
        assert value(found, "router_workers_up") == 2
        assert value(found, "router_worker_scrape_failed", worker="1") == 0
    assert status["workers"] == [0, 1]
    assert status["sources"]["conscent"]["events_accepted"] == k
    assert status["sinks"]["conscent"]["delivered"] == k


TOKEN = "group-admin-token-3c1f"


def private(data: Path, worker: int) -> httpx.AsyncClient:
    """A client of worker ``worker``'s own admin socket: that worker alone answers."""
    transport = httpx.AsyncHTTPTransport(uds=str(data / f"worker-{worker}" / "admin.sock"))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.AsyncClient(transport=transport, base_url="http://worker", headers=headers)


async def test_a_reload_on_the_shared_admin_listener_is_every_workers(tmp_path):
    config = tmp_path / "router.yaml"
    doc = {
        "logging": {"format": "json"},
        "admin": {"token": TOKEN},
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"up": {"plugin": "file", "path": str(tmp_path / "out.ndjson")}},
        "routes": [{"from": "in", "to": "up"}],
    }
    config.write_text(yaml.safe_dump(doc))
    data = tmp_path / "d"
    async with trio.open_nursery() as nursery:
        daemon = await DaemonProcess(group_args(config, data)).start(nursery)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=daemon.admin_url) as admin:
            assert (await admin.post("/admin/reload")).status_code == 401
            assert (await admin.get("/metrics")).status_code == 401

            doc["sinks"]["up"]["batch"] = {"max_events": 10}
            config.write_text(yaml.safe_dump(doc))
            r = await admin.post("/admin/reload", headers=headers)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["result"] == "applied"
            assert set(body["workers"]) == {"0", "1"}
            for record in body["workers"].values():
                assert record["result"] == "applied"
                assert record["changes"]["changed"] == {"sinks": ["up"]}, record

            doc["sinks"]["up"]["batch"] = {"max_events": "lots"}
            config.write_text(yaml.safe_dump(doc))
            r = await admin.post("/admin/reload", headers=headers)
            assert r.status_code == 422, r.text
            body = r.json()
            assert body["result"] == "rejected"
            assert [w["result"] for w in body["workers"].values()] == ["rejected", "rejected"]
            assert "max_events" in body["workers"]["1"]["problems"][0]

            history = (await admin.get("/admin/reloads", headers=headers)).json()["workers"]
            assert {w: [e["result"] for e in h] for w, h in history.items()} == {
                "0": ["applied", "rejected"],
                "1": ["applied", "rejected"],
            }
            status = (await admin.get("/admin/status", headers=headers)).json()
            assert status["workers"] == [0, 1]
            assert status["ready"] is True
        for worker in (0, 1):
            async with private(data, worker) as own:
                effective = (await own.get("/admin/config")).json()
                assert effective["sinks"]["up"]["batch"]["max_events"] == 10, worker
                assert (await own.get("/admin/status")).json()["workers"] == [worker]
        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
    assert len(daemon.events("config.reload_applied")) == 2
    assert len(daemon.events("config.reload_rejected")) == 2
    assert not (data / "worker-0" / "admin.sock").exists(), "the supervisor removes its sockets"


def test_a_taken_admin_port_stops_the_group_with_one_line(tmp_path):
    config = write_config(
        tmp_path / "router.yaml", "sinks:\n  f: {plugin: file, path: out.ndjson}\n"
    )
    with taken_port() as port:
        ran = run_router(*group_args(config, tmp_path / "d", "--admin-bind", f"127.0.0.1:{port}"))
    assert user_error(ran) == (
        f"router: error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another router or program is using it; pick another with admin.bind or --admin-bind)"
    )


@pytest.mark.redis
async def test_a_shared_redis_stream_is_counted_once_not_once_per_worker(tmp_path, redis_prefix):
    from router.testing.redis import REDIS_URL

    k = 40
    data = tmp_path / "d"
    async with FakeUpstream.running() as upstream:
        upstream.refuse()  # everything stays queued in the one stream
        redis = {"url": REDIS_URL, "prefix": redis_prefix, "refresh_interval": "0.2s"}
        path = relay_config(tmp_path, upstream.url, level="debug", redis=redis, buffer="redis")
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(group_args(path, data)).start(nursery)
            await post_many(daemon.url, k, "r")
            with trio.fail_after(30):  # each worker sees the other's events once it refreshes
                for worker in (0, 1):
                    async with private(data, worker) as own:
                        while True:
                            found = samples((await own.get("/metrics")).text)
                            if value(found, "router_sink_events_queued", sink="conscent") == k:
                                break
                            await trio.sleep(0.05)
            async with httpx.AsyncClient(base_url=daemon.admin_url) as admin:
                found = samples((await admin.get("/metrics")).text)
                status = (await admin.get("/admin/status")).json()
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    assert {e.get("worker") for e in daemon.events("ingest.request")} == {0, 1}
    assert value(found, "router_sink_events_accepted_total", sink="conscent") == k
    assert value(found, "router_sink_events_queued", sink="conscent") == k
    assert status["sinks"]["conscent"]["pending"] == k


@pytest.mark.slow
async def test_a_restarted_worker_serves_its_private_socket_again(tmp_path):
    data = tmp_path / "d"
    async with FakeUpstream.running() as upstream:
        path = relay_config(tmp_path, upstream.url)
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(group_args(path, data)).start(nursery)
            (started,) = daemon.events("workers.started")
            os.kill(started["pids"][1], signal.SIGKILL)
            async with httpx.AsyncClient(base_url=daemon.admin_url) as admin:
                with trio.fail_after(30):
                    while not daemon.events("workers.worker_exited"):  # noqa: ASYNC110
                        await trio.sleep(0.05)
                # Meanwhile a scrape still answers, with what the group has.
                r = await admin.get("/metrics")
                assert r.status_code == 200
                assert value(samples(r.text), "router_worker_info", worker="0") == 1
                with trio.fail_after(60):
                    while len(daemon.events("daemon.ready")) < 3:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                found = samples((await admin.get("/metrics")).text)
                status = (await admin.get("/admin/status")).json()
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    assert value(found, "router_workers_up") == 2
    assert value(found, "router_worker_info", worker="1") == 1
    assert status["workers"] == [0, 1]
    assert len(daemon.events("workers.ready")) == 1
