"""Byte budgets on concurrent work: request bodies in progress, batches in delivery."""

from __future__ import annotations

import orjson
import trio

from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Hold, Reply
from tests.helpers.sample_traffic import FAST_RETRY

EVENT = 100_000


def big(user: str) -> dict:
    return {"kind": "view", "user": user + "-" + "x" * EVENT}


async def test_a_sinks_concurrent_batches_hold_at_most_max_inflight_bytes(tmp_path, sample):
    """Eight workers, batches of one 100 kB event, 250 kB in flight: two sends at once."""
    release = trio.Event()
    async with FakeUpstream.running(default=Hold(release, then=Reply(200))) as upstream:
        config = {
            "sources": {"in": {"plugin": "sample", "auth": "none"}},
            "sinks": {
                "up": {
                    "plugin": "sample",
                    "url": upstream.url,
                    "api_key": "k",
                    "batch": {"max_events": 10, "max_bytes": EVENT + 1000, "max_wait": 0},
                    "max_concurrency": 8,
                    "max_inflight_bytes": 250_000,
                    "retry": FAST_RETRY,
                }
            },
            "routes": [{"from": "in", "to": "up"}],
        }
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            for i in range(10):
                r = await rd.client.post("/sample/events", json={"events": [big(f"u{i}")]})
                assert r.status_code == 202, r.text
            runner = rd.runner("up")
            with trio.fail_after(10):
                # Two sends held by the upstream and six workers waiting for room,
                # or (unbounded) a third send: either way the outcome is settled.
                while not (  # noqa: ASYNC110
                    upstream.requests_total >= 3
                    or (upstream.requests_total == 2 and runner.inflight.waiting == 6)
                ):
                    await trio.sleep(0.01)
            assert upstream.requests_total == 2
            assert runner.statistics()["inflight_bytes"] <= 250_000
            release.set()
            with trio.fail_after(20):
                await upstream.wait_for(lambda u: len(u.accepted) >= 10)
            users = {e["user"].split("-")[0] for r in upstream.accepted for e in r.json()["events"]}
            assert users == {f"u{i}" for i in range(10)}
            # Idle workers keep reserving max_bytes while they wait for events.
            assert runner.inflight.held <= 250_000


async def test_an_event_larger_than_batch_max_bytes_goes_alone(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        config = {
            "sources": {"in": {"plugin": "sample", "auth": "none"}},
            "sinks": {
                "up": {
                    "plugin": "sample",
                    "url": upstream.url,
                    "api_key": "k",
                    "batch": {"max_events": 10, "max_bytes": 1000, "max_wait": 0.05},
                    "max_concurrency": 1,
                    "max_inflight_bytes": 50_000,
                    "retry": FAST_RETRY,
                }
            },
            "routes": [{"from": "in", "to": "up"}],
        }
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            events = [{"kind": "view", "user": "a"}, big("b"), {"kind": "view", "user": "c"}]
            r = await rd.client.post("/sample/events", json={"events": events})
            assert r.status_code == 202, r.text
            with trio.fail_after(10):
                await upstream.wait_for(lambda u: len(u.accepted) >= 3)
        sent = [[e["user"][:1] for e in r.json()["events"]] for r in upstream.accepted]
        assert sent == [["a"], ["b"], ["c"]]


async def test_ingest_beyond_max_inflight_bytes_waits_then_answers_503(tmp_path, sample):
    """A request whose body is half sent holds its declared length of the budget; one
    more that does not fit waits ADMIT_WAIT, then gets 503, its body read and dropped."""
    config = {
        "server": {"max_body_bytes": 200_000, "max_inflight_bytes": 150_000},
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": str(tmp_path / "out.jsonl")}},
        "routes": [{"from": "in", "to": "out"}],
    }
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        budget = rd.daemon.asgi.inflight.budget
        host, port = rd.url.removeprefix("http://").split(":")
        body = orjson.dumps({"events": [big("first")]})
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(
            b"POST /sample/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body) + body[: len(body) // 2]
        )
        with trio.fail_after(10):
            while budget.held < len(body):  # noqa: ASYNC110
                await trio.sleep(0.01)
        r = await rd.client.post("/sample/events", json={"events": [big("second")]})
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1"
        assert "server.max_inflight_bytes" in r.text
        # The first request goes through once its body is complete; then there is room.
        await stream.send_all(body[len(body) // 2 :])
        reply = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in reply:
                reply += await stream.receive_some(65536)
        assert reply.startswith(b"HTTP/1.1 202"), reply[:200]
        await stream.aclose()
        r = await rd.client.post("/sample/events", json={"events": [big("third")]})
        assert r.status_code == 202, r.text
        with trio.fail_after(10):  # given back just after each reply is sent
            while budget.held:  # noqa: ASYNC110
                await trio.sleep(0.01)
