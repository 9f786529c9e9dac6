"""Scale-out through Redis: shared limits, a shared spool, kill -9, a Redis restart.

Every test uses its own key prefix on the suite's Redis (deleted afterwards),
except the restart test, which kills and restarts a redis-server of its own.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import coredis
import orjson
import pytest
import trio

from router.cli import main
from router.redisconn import default_consumer
from router.redisqueue import GROUP, RedisDeadLetters
from router.testing.daemon import running_daemon
from router.testing.process import DaemonProcess
from router.testing.redis import REDIS_URL, RedisServer, free_port, open_test_link
from router.testing.upstream import Delay, FakeUpstream, Reply
from tests.helpers.conscent_traffic import delivered, load, relay_config
from tests.helpers.sample_traffic import post, relay, users
from tests.helpers.sample_traffic import settle as settle_within

pytestmark = pytest.mark.redis


# These tests wait at most 20 s for a sink to settle.
settle = functools.partial(settle_within, within=20)


def redis_relay(upstream_url: str, prefix: str, *, url: str = REDIS_URL, redis=None, **sink):
    """sample source -> sample sink with ``buffer: redis``."""
    return {
        "redis": {"url": url, "prefix": prefix, **(redis or {})},
        **relay(upstream_url, buffer="redis", **sink),
    }


def conscent_config(tmp_path, name: str, upstream_url: str, prefix: str) -> str:
    """conscent -> conscent with ``buffer: redis``; idle entries are claimed after 1 s."""
    return relay_config(
        tmp_path,
        upstream_url,
        name=name,
        redis={"url": REDIS_URL, "prefix": prefix, "claim_idle": "1s", "refresh_interval": "0.2s"},
        buffer="redis",
    )


async def test_redis_buffer_delivers_reconciles_and_dead_letters(tmp_path, sample, redis_prefix):
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda r: Reply(400, b"no") if b'"bad' in r.body else None
        config = redis_relay(upstream.url, redis_prefix)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            sent = []
            for i in range(10):
                sent += await post(rd.client, [f"u{i}-{j}" for j in range(7)])
            await post(rd.client, ["bad1", "bad2"])
            accounts = await settle(rd)
            assert accounts["delivered"] == len(sent) and accounts["dead_lettered"] == 2
            letters = await RedisDeadLetters(rd.daemon.resources.redis_link(), "up").list()
            assert sorted(orjson.loads(d.payload)["user"] for d in letters) == ["bad1", "bad2"]
            assert [(d.reason, d.status, d.response) for d in letters] == [
                ("rejected", 400, "no")
            ] * 2
        assert set(users(upstream)) == set(sent)


# -- shared limits ----------------------------------------------------------------

LIMIT = 100  # events/s, shared by the three daemons
WARMUP, WINDOW = 0.7, 3.0


async def test_three_daemons_share_one_limit_within_ten_percent(tmp_path, sample, redis_prefix):
    config = {
        "redis": {"url": REDIS_URL, "prefix": redis_prefix},
        "sources": {
            "in": {
                "plugin": "sample",
                "auth": "none",
                "rate_limit": {"rate": LIMIT, "burst": 25, "unit": "events", "backend": "redis"},
            }
        },
        "sinks": {"out": {"plugin": "file", "path": str(tmp_path / "out.ndjson")}},
        "routes": [{"from": "in", "to": "out"}],
    }
    accepted: list[tuple[float, int]] = []
    refused = Counter()
    async with (
        running_daemon(config, data_dir=tmp_path / "a", plugins=sample) as a,
        running_daemon(config, data_dir=tmp_path / "b", plugins=sample) as b,
        running_daemon(config, data_dir=tmp_path / "c", plugins=sample) as c,
    ):
        stop_at = trio.current_time() + WARMUP + WINDOW + 0.3

        async def hammer(rd, n):
            body = {"events": [{"kind": "view", "user": f"{n}-{i}"} for i in range(5)]}
            while trio.current_time() < stop_at:
                r = await rd.client.post("/sample/events", json=body)
                if r.status_code == 202:
                    accepted.append((trio.current_time(), 5))
                else:
                    assert r.status_code == 429, r.text
                    refused[rd.url] += 1

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for rd in (a, b, c):
                for n in range(3):
                    nursery.start_soon(hammer, rd, n)
    begin = started + WARMUP  # the burst is spent by then
    in_window = sum(n for t, n in accepted if begin <= t < begin + WINDOW)
    rate = in_window / WINDOW
    print(f"\nshared limit {LIMIT}/s: {rate:.1f}/s accepted by three daemons, {dict(refused)}")
    assert len(refused) == 3  # every daemon was refused some: the limit is global
    assert abs(rate - LIMIT) <= 0.1 * LIMIT


# -- a shared spool and kill -9 ------------------------------------------------


async def test_two_daemons_share_a_spool_and_kill_9_loses_nothing(tmp_path, redis_prefix):
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda r: Delay(0.1, then=Reply(201))  # slower than ingest
        config = conscent_config(tmp_path, "router", upstream.url, redis_prefix)
        dirs = [tmp_path / "a", tmp_path / "b"]
        acked: list[str] = []
        async with trio.open_nursery() as nursery:
            a, b = [
                DaemonProcess(["run", "-c", config, "--bind", "127.0.0.1:0", "--data-dir", str(d)])
                for d in dirs
            ]
            async with trio.open_nursery() as starting:
                starting.start_soon(a.start, nursery)
                starting.start_soon(b.start, nursery)
            stop = trio.Event()
            nursery.start_soon(load, a.url, acked, 4, stop, "a")
            nursery.start_soon(load, b.url, acked, 4, stop, "b")
            with trio.fail_after(30):
                while len(acked) < 400 or len(upstream.accepted) < 10:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            a.kill()
            assert await a.wait() == -signal.SIGKILL
            async with coredis.Redis.from_url(REDIS_URL) as redis:
                stream = f"{{{redis_prefix}:conscent}}:stream"
                summary = await redis.xpending(stream, GROUP)
            held_by_a = int(summary.consumers.get(default_consumer(dirs[0]).encode(), 0))
            assert held_by_a > 0, "a was killed with nothing in flight"
            after_kill = len(acked)
            with trio.fail_after(10):
                while len(acked) < after_kill + 200:  # noqa: ASYNC110  b goes on alone
                    await trio.sleep(0.01)
            stop.set()
            with trio.fail_after(40):
                await upstream.wait_for(lambda u: set(acked) <= delivered(u))
                # What a held is claimed by b even if a had sent it before dying.
                while sum(e["events"] for e in b.events("redis.claimed")) < held_by_a:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            b.signal(signal.SIGTERM)
            assert await b.wait() == 0
    received = [e["userId"] for r in upstream.accepted for e in r.json()["messageBody"]]
    print(
        f"\nkill -9 of one of two daemons: {len(acked)} acknowledged, {held_by_a} held by the "
        f"dead one and claimed by the other, {len(received) - len(set(received))} delivered twice"
    )


# -- Redis restarted under load ---------------------------------------------------


async def test_redis_restart_under_load_loses_nothing_and_service_resumes(tmp_path, sample):
    server = RedisServer(tmp_path / "redis")
    await server.start()
    try:
        async with FakeUpstream.running() as upstream:
            config = redis_relay(
                upstream.url,
                "restart",
                url=server.url,
                redis={
                    "connect_timeout": 0.5,
                    "command_timeout": 1,
                    "reconnect": {"initial_backoff": 0.05, "max_backoff": 0.3},
                },
            )
            async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
                acked: list[str] = []
                statuses = Counter()
                stop = trio.Event()
                restarting = trio.Event()
                acked_while_down = []

                async def client(n: int) -> None:
                    i = 0
                    refused = False
                    while not stop.is_set():
                        names = [f"{n}-{i}-{j}" for j in range(3)]
                        i += 1
                        r = await rd.client.post(
                            "/sample/events",
                            json={"events": [{"kind": "view", "user": u} for u in names]},
                        )
                        statuses[r.status_code] += 1
                        if r.status_code == 202:
                            acked.extend(names)
                            if refused and not restarting.is_set():
                                acked_while_down.extend(names)
                        else:
                            assert r.status_code == 503, r.text
                            assert r.headers["retry-after"]
                            refused = True
                            await trio.sleep(0.05)

                async with trio.open_nursery() as nursery:
                    for n in range(4):
                        nursery.start_soon(client, n)
                    with trio.fail_after(20):
                        while len(acked) < 300:  # noqa: ASYNC110
                            await trio.sleep(0.01)
                    server.kill()
                    await server.wait()
                    before = len(acked)
                    with trio.fail_after(10):
                        while statuses[503] < 20:  # noqa: ASYNC110
                            await trio.sleep(0.01)
                    restarting.set()
                    await server.start()
                    with trio.fail_after(20):  # the daemon reconnects by itself
                        while len(acked) < before + 300:  # noqa: ASYNC110
                            await trio.sleep(0.01)
                    stop.set()
                assert not acked_while_down
                accounts = await settle(rd, within=30)
                ready = await rd.client.get("/readyz")
                assert ready.status_code == 200, ready.text
                errors = [
                    sample.value
                    for metric in rd.metrics.registry.collect()
                    if metric.name == "router_redis_errors"
                    for sample in metric.samples
                    if sample.name.endswith("_total")
                ]
                assert sum(errors) > 0
            got = users(upstream)
            assert set(acked) <= set(got)
            print(
                f"\nredis restart: {len(acked)} acknowledged, {statuses[503]} answered 503 while "
                f"it was down, {sum(n - 1 for n in got.values())} delivered twice; {accounts}"
            )
    finally:
        await server.stop()


# -- router dlq on a Redis sink -----------------------------------------------------


def test_router_dlq_commands_work_on_a_redis_sink(tmp_path, capsys):
    prefix = f"t{uuid.uuid4().hex[:8]}"
    config = conscent_config(tmp_path, "router", "http://127.0.0.1:1", prefix)

    async def seed():
        from router.redisqueue import RedisQueue

        async with open_test_link(prefix) as (link, start):
            queue = RedisQueue(link, "conscent")
            await start()
            await queue.dead_letter_new(
                [("e1", b'{"a":1}', "untranslatable: x"), ("e2", b'{"a":2}', "untranslatable: y")],
                5.0,
            )

    async def stream_length():
        async with coredis.Redis.from_url(REDIS_URL) as redis:
            return await redis.xlen(f"{{{prefix}:conscent}}:stream")

    async def cleanup():
        from router.testing.redis import delete_prefix

        await delete_prefix(prefix)

    try:
        trio.run(seed)
        assert main(["dlq", "list", "conscent", "-c", config]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines() == [
            "1\te1\t0\t-\tuntranslatable: x",
            "2\te2\t0\t-\tuntranslatable: y",
        ]
        assert "2 dead letters in conscent" in err
        assert main(["dlq", "show", "conscent", "--id", "2", "-c", config]) == 0
        assert '"event_id": "e2"' in capsys.readouterr().out
        assert main(["dlq", "replay", "conscent", "--id", "1", "-c", config]) == 0
        assert trio.run(stream_length) == 1
        assert main(["dlq", "purge", "conscent", "--all", "-c", config]) == 0
        assert "purged 1 dead letters" in capsys.readouterr().err
        assert main(["dlq", "list", "conscent", "-c", config]) == 0
        assert capsys.readouterr().out == ""
    finally:
        trio.run(cleanup)


def test_router_dlq_on_a_redis_sink_with_redis_down_is_one_line_and_exit_2(tmp_path):
    """Storage the user must fix, as for the disk spool: not a 'negative result' (1)."""
    config = conscent_config(tmp_path, "router", "http://127.0.0.1:1", "down")
    dead = f"redis://127.0.0.1:{free_port()}"
    Path(config).write_text(Path(config).read_text().replace(REDIS_URL, dead))
    done = subprocess.run(
        [sys.executable, "-m", "router", "dlq", "list", "conscent", "-c", config],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("router: error: "), done.stderr
    assert "Traceback" not in done.stderr
