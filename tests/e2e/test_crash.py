"""kill -9 under load, and a full spool under load, with the daemon as a real process."""

from __future__ import annotations

import signal

import httpx
import trio

from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream, Hold, Reply
from tests.helpers.conscent_traffic import delivered, load, ping, relay_config


async def test_kill_9_under_load_loses_no_acknowledged_event(tmp_path):
    async with FakeUpstream.running() as upstream:
        # After ten deliveries the upstream holds every request until after the crash:
        # at the kill some events are in flight and the rest wait in the spool.
        release = trio.Event()
        upstream.handler = lambda r: (
            Hold(release, then=Reply(201)) if len(upstream.accepted) >= 10 else Reply(201)
        )
        config = relay_config(tmp_path, upstream.url)
        args = ["run", "-c", config, "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")]
        acked: list[str] = []
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(args).start(nursery)
            stop = trio.Event()
            nursery.start_soon(load, daemon.url, acked, 8, stop, "k")
            with trio.fail_after(30):
                while len(acked) < 1500 or not upstream.accepted:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            daemon.kill()
            assert await daemon.wait() == -signal.SIGKILL
            stop.set()
        release.set()
        lost_at_crash = set(acked) - delivered(upstream)
        assert lost_at_crash, "the crash should leave acknowledged events undelivered"

        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(args).start(nursery)
            (started,) = daemon.events("sink.started")
            assert started["pending"] >= len(lost_at_crash)
            with trio.fail_after(60):
                await upstream.wait_for(lambda u: set(acked) <= delivered(u))
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
    received = [e["userId"] for r in upstream.accepted for e in r.json()["messageBody"]]
    print(
        f"\nkill -9: {len(acked)} acknowledged, {len(lost_at_crash)} pending at the crash, "
        f"{len(received) - len(set(received))} delivered twice (at-least-once)"
    )


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def test_full_spool_answers_503_with_flat_memory_then_delivers(tmp_path):
    async with FakeUpstream.running() as upstream:
        upstream.refuse()
        config = relay_config(
            tmp_path, upstream.url, spool={"max_events": 500, "when_full": "block"}
        )
        args = ["run", "-c", config, "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")]
        acked: list[str] = []
        statuses: dict[int, int] = {}
        async with trio.open_nursery() as nursery:
            daemon = await DaemonProcess(args).start(nursery)
            async with httpx.AsyncClient(base_url=daemon.url) as http:

                async def hammer(rounds: int, prefix: str) -> None:
                    for i in range(rounds):
                        users = [f"{prefix}{i}-{j}" for j in range(20)]
                        r = await http.post(
                            "/collect/event", json={"messageBody": [ping(u) for u in users]}
                        )
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if r.status_code == 201:
                            acked.extend(users)
                        else:
                            assert r.status_code == 503 and r.headers["retry-after"] == "5"
                            assert r.json()["statusCode"] == 503

                await hammer(100, "warm")  # fills the spool, then 503s
                before = rss_kib(daemon.process.pid)
                await hammer(1000, "hot")  # 20,000 more events, all refused
                after = rss_kib(daemon.process.pid)
            assert statuses[503] >= 1000 and len(acked) == 500
            # Memory stays flat while the spool is full (allow 16 MiB of allocator noise).
            assert after - before < 16 * 1024, (before, after)
            await upstream.accept()
            with trio.fail_after(60):
                await upstream.wait_for(lambda u: set(acked) <= delivered(u))
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        print(f"\nfull spool: RSS {before} KiB before and {after} KiB after 1000 refused requests")
