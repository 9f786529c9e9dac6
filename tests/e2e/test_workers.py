"""`router run --workers N`: one socket, N daemon processes, nothing lost when N shrinks."""

from __future__ import annotations

import signal

import httpx
import trio

from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream
from tests.helpers.conscent_traffic import delivered, ping, relay_config


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
