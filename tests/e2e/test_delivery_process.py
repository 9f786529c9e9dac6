"""``server.delivery: process``: one process ingests, another delivers from the shared spool.

Real processes (``router run``), a recording upstream on loopback, kill -9.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
import trio

from router.config import schema
from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream
from tests.e2e.test_workers import post_many, samples, value
from tests.helpers.cli import run_router, user_error
from tests.helpers.conscent_traffic import delivered, load, ping, relay_config


def pair_config(tmp_path: Path, upstream_url: str, **sink: object) -> str:
    path = relay_config(tmp_path, upstream_url, level="debug", **sink)
    text = Path(path).read_text()
    Path(path).write_text(text.replace("server: {", "server: {delivery: process, "))
    return path


def pair_args(config: str, data: Path) -> list[str]:
    return ["run", "-c", config, "--bind", "127.0.0.1:0", "--data-dir", str(data)]


async def scrape(url: str) -> dict:
    async with httpx.AsyncClient(base_url=url) as client:
        return samples((await client.get("/metrics")).text)


async def until_delivered(url: str, k: int) -> dict:
    """The group's metrics once they count ``k`` deliveries (counted after the answer)."""
    with trio.fail_after(30):
        while True:
            found = await scrape(url)
            if value(found, "router_sink_events_delivered_total", sink="conscent") >= k:
                return found
            await trio.sleep(0.05)


async def test_the_pair_delivers_everything_and_the_group_counts_it_once(tmp_path):
    k = 90
    data = tmp_path / "data"
    async with FakeUpstream.running() as upstream:
        path = pair_config(tmp_path, upstream.url)
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(pair_args(path, data)).start(nursery)
            (started,) = daemon.events("workers.started")
            assert started["roles"] == ["ingest", "delivery"]
            sent = await post_many(daemon.url, k, "p")
            await upstream.wait_for(lambda u: set(sent) <= delivered(u))
            scrapes = [await until_delivered(daemon.admin_url, k)]
            scrapes.append(await scrape(daemon.url))
            async with httpx.AsyncClient(base_url=daemon.admin_url) as admin:
                status = (await admin.get("/admin/status")).json()
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    # Each event was sent once, by the delivery process; the ingest process served every request.
    assert sorted(delivered(upstream)) == sorted(sent) and len(upstream.accepted) < k
    assert {e.get("worker") for e in daemon.events("ingest.request")} == {0}
    assert {e.get("worker") for e in daemon.events("sink.batch_sent")} == {1}
    assert (data / "spool.db").exists() and not (data / "worker-0" / "spool.db").exists()
    for found in scrapes:
        assert value(found, "router_events_accepted_total", source="conscent") == k
        assert value(found, "router_sink_events_accepted_total", sink="conscent") == k
        assert value(found, "router_sink_events_delivered_total", sink="conscent") == k
        assert value(found, "router_sink_events_recovered_total", sink="conscent") == 0
        assert value(found, "router_sink_events_queued", sink="conscent") == 0
        assert value(found, "router_sink_spool_bytes", sink="conscent") == 0
        assert value(found, "router_workers_up") == 2
    assert status["workers"] == [0, 1]
    assert status["sources"]["conscent"]["events_accepted"] == k
    sink = status["sinks"]["conscent"]
    assert (sink["delivered"], sink["pending"], sink["dead_letters_stored"]) == (k, 0, 0)


async def test_a_full_spool_opens_again_as_the_delivery_process_drains_it(tmp_path):
    async with FakeUpstream.running() as upstream:
        upstream.refuse()
        path = pair_config(tmp_path, upstream.url, spool={"max_events": 30})
        async with (
            trio.open_nursery() as nursery,
            httpx.AsyncClient() as client,
        ):
            daemon = await DaemonProcess(pair_args(path, tmp_path / "d")).start(nursery)
            url = f"{daemon.url}/collect/event"
            body = {"messageBody": [ping(f"f{i}") for i in range(10)]}
            codes = [(await client.post(url, json=body)).status_code for _ in range(4)]
            assert codes == [201, 201, 201, 503], "the ingest process enforces the bound"
            await upstream.accept()
            # Only the other process's deletes can make room: the ingest process reads them.
            with trio.fail_after(20):
                while (await client.post(url, json=body)).status_code != 201:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            await upstream.wait_for(lambda u: len(delivered(u)) >= 10)
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0


async def test_either_process_killed_is_restarted_and_nothing_acknowledged_is_lost(tmp_path):
    """kill -9 each process in turn while clients post and the upstream flaps."""
    acked: list[str] = []
    async with FakeUpstream.running() as upstream:
        path = pair_config(tmp_path, upstream.url)
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(pair_args(path, tmp_path / "d")).start(nursery)
            (started,) = daemon.events("workers.started")
            for round_, victim in enumerate(("delivery", "ingest")):
                stop = trio.Event()
                nursery.start_soon(load, daemon.url, acked, 4, stop, f"k{round_}-")
                await trio.sleep(0.5)
                upstream.refuse()
                await trio.sleep(0.2)
                await upstream.accept()
                await trio.sleep(0.3)
                pid = started["pids"][started["roles"].index(victim)]
                exited = len(daemon.events("workers.worker_exited"))
                os.kill(pid, signal.SIGKILL)
                with trio.fail_after(30):  # the supervisor starts it again
                    while len(daemon.events("workers.worker_exited")) == exited:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                    ready = len(daemon.events("daemon.ready"))
                    while len(daemon.events("daemon.ready")) == ready:  # noqa: ASYNC110
                        await trio.sleep(0.05)
                await trio.sleep(0.5)
                stop.set()
                started = {**started, "pids": await pids_of(daemon)}
            assert len(acked) > 100
            with trio.fail_after(60):
                await upstream.wait_for(lambda u: set(acked) <= delivered(u))
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    exits = daemon.events("workers.worker_exited")
    assert [e["exitcode"] for e in exits] == [-signal.SIGKILL, -signal.SIGKILL]


async def pids_of(daemon: DaemonProcess) -> list[int]:
    """The pair's pids now, from their own ready lines (a restarted one logs anew)."""
    latest: dict[int, int] = {}
    for entry in daemon.events("daemon.ready"):
        latest[entry["worker"]] = entry["pid"]
    return [latest[0], latest[1]]


async def test_a_reload_reaches_both_processes(tmp_path):
    async with FakeUpstream.running() as upstream:
        path = pair_config(tmp_path, upstream.url)
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(pair_args(path, tmp_path / "d")).start(nursery)
            text = await trio.Path(path).read_text()
            await trio.Path(path).write_text(text.replace('"max_events": 20', '"max_events": 7'))
            async with httpx.AsyncClient(base_url=daemon.admin_url) as admin:
                r = await admin.post("/admin/reload")
            assert r.status_code == 200, r.text
            answers = r.json()["workers"]
            assert {w: a["result"] for w, a in answers.items()} == {"0": "applied", "1": "applied"}
            sent = await post_many(daemon.url, 21, "r")
            await upstream.wait_for(lambda u: set(sent) <= delivered(u))
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    assert max(len(r.json()["messageBody"]) for r in upstream.accepted) <= 7


def test_the_pair_with_several_workers_is_one_line(tmp_path):
    path = pair_config(tmp_path, "http://127.0.0.1:9")
    ran = run_router(*pair_args(path, tmp_path / "d"), "--workers", "2")
    assert user_error(ran) == f"{path}: server.delivery: {schema.ONE_INGEST_PROCESS}"


@pytest.mark.parametrize(
    ("before", "after", "worker"), [("disk", "memory", 1), ("memory", "disk", 0)]
)
async def test_a_reload_that_changes_buffer_keeps_the_queue_and_who_delivers_it(
    tmp_path, before, after, worker
):
    """``buffer`` needs a restart: until then the queue, and the process that
    delivers it, stay as they are, and nothing posted after the reload waits."""
    async with FakeUpstream.running() as upstream:
        path = pair_config(tmp_path, upstream.url, buffer=before)
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(pair_args(path, tmp_path / "d")).start(nursery)
            first = await post_many(daemon.url, 5, "b")
            await upstream.wait_for(lambda u: set(first) <= delivered(u))
            text = await trio.Path(path).read_text()
            assert f'buffer: "{before}"' in text
            text = text.replace(f'buffer: "{before}"', f'buffer: "{after}"')
            await trio.Path(path).write_text(text.replace('"max_events": 20', '"max_events": 3'))
            async with httpx.AsyncClient(base_url=daemon.admin_url) as admin:
                r = await admin.post("/admin/reload")
            assert r.status_code == 200, r.text
            answers = r.json()["workers"]
            assert [a["result"] for a in answers.values()] == ["applied", "applied"], answers
            # The ingest process has the sink's queue either way, and keeps it.
            assert "sinks.conscent.buffer" in answers["0"]["changes"]["restart_required"]
            sent = await post_many(daemon.url, 12, "a")
            with trio.fail_after(20):
                await upstream.wait_for(lambda u: set(sent) <= delivered(u))
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    assert {e["worker"] for e in daemon.events("sink.batch_sent")} == {worker}
    assert max(len(r.json()["messageBody"]) for r in upstream.accepted[-4:]) <= 3
