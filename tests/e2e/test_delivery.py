"""Delivery under faults, against a fault-injecting upstream on loopback.

Every test ends by reconciling the sink's counters:
recovered + accepted = delivered + dead-lettered + dropped + pending.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
import trio

from router.deadletters import DeadLetters
from router.testing.daemon import running_daemon
from router.testing.upstream import Close, Delay, FakeUpstream, Reply, Reset
from tests.helpers.sample_traffic import FAST_RETRY, post, relay, settle, users


async def test_upstream_500s_then_recovers_nothing_lost(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        failing = True
        upstream.handler = lambda r: Reply(500, b"busy") if failing else None
        async with running_daemon(
            relay(upstream.url), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            sent = []
            for i in range(10):
                sent += await post(rd.client, [f"u{i}-{j}" for j in range(7)])
            with trio.fail_after(10):
                await upstream.wait_for(lambda u: u.responses_by_status.get(500, 0) >= 15)
            assert rd.metric("router_sink_events_retried_total", sink="up") > 0
            failing = False
            accounts = await settle(rd)
        got = users(upstream)
        assert set(got) == set(sent)
        duplicates = sum(n - 1 for n in got.values())
        print(f"\n500s then recovery: {len(sent)} events, {duplicates} duplicates at the upstream")
        assert accounts["delivered"] == len(sent) and accounts["dead_lettered"] == 0


async def test_429_retry_after_pauses_the_whole_sink(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.script(Reply(429, headers={"retry-after": "2"}))
        async with running_daemon(
            relay(upstream.url, max_concurrency=4, batch={"max_events": 1, "max_wait": 0}),
            data_dir=tmp_path / "d",
            plugins=sample,
        ) as rd:
            sent = await post(rd.client, ["first"])
            with trio.fail_after(5):
                await upstream.wait_for(lambda u: u.responses_by_status.get(429))
            # Four idle workers and eleven new events: still nothing may go out for 2 s.
            sent += await post(rd.client, [f"u{i}" for i in range(11)])
            await settle(rd)
        (refusal,) = [r for r in upstream.requests if r.status == 429]
        later = [r.received_at - refusal.answered_at for r in upstream.requests if r is not refusal]
        assert len(later) == 12
        assert all(gap >= 2.0 for gap in later), [round(g, 3) for g in later]
        assert set(users(upstream)) == set(sent)


async def test_timeouts_resets_and_closed_connections_lose_nothing(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        faults = iter([Delay(5), Reset(), Close(), Reset(), Delay(5), Close()] * 3)
        upstream.handler = lambda r: next(faults, None)
        async with running_daemon(
            relay(upstream.url, timeout=0.3), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            sent = []
            for i in range(20):
                sent += await post(rd.client, [f"t{i}-{j}" for j in range(5)])
            accounts = await settle(rd)
        got = users(upstream)
        assert set(got) == set(sent)
        assert accounts["delivered"] == len(sent)
        print(
            f"\nfaults: {sum(n - 1 for n in got.values())} duplicates "
            f"(delayed requests the upstream answered after the client gave up)"
        )


@pytest.mark.slow
async def test_refused_connections_for_30_seconds_lose_nothing(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.refuse()
        async with running_daemon(
            relay(upstream.url, retry={**FAST_RETRY, "max_backoff": 2}),
            data_dir=tmp_path / "d",
            plugins=sample,
        ) as rd:
            sent = []
            with trio.move_on_after(30):
                i = 0
                while True:
                    sent += await post(rd.client, [f"r{i}-{j}" for j in range(3)])
                    i += 1
                    await trio.sleep(0.5)
            assert rd.runner("up").failing_for() > 25
            ready = (await rd.client.get("/readyz")).json()
            assert ready["sinks"]["up"]["pending"] == len(sent)
            await upstream.accept()
            accounts = await settle(rd, within=30)
        assert set(users(upstream)) == set(sent)
        assert accounts["delivered"] == len(sent)


async def test_400s_dead_letter_exactly_the_bad_events_and_replay_resends_them(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda r: (
            Reply(400, b'{"error":"bad user"}') if b"bad-" in r.body else None
        )
        config = relay(upstream.url)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            names = [f"ok-{i}" if i % 7 else f"bad-{i}" for i in range(60)]
            for start in range(0, 60, 15):
                await post(rd.client, names[start : start + 15])
            accounts = await settle(rd)
        bad = {n for n in names if n.startswith("bad-")}
        assert set(users(upstream)) == set(names) - bad
        assert accounts["dead_lettered"] == len(bad)
        with DeadLetters(tmp_path / "d") as dlq:
            letters = dlq.list("up")
        assert {orjson.loads(letter.payload)["user"] for letter in letters} == bad
        assert all(
            letter.status == 400
            and letter.response == '{"error":"bad user"}'
            and letter.reason == "rejected"
            for letter in letters
        )

        # The upstream is fixed; `router dlq replay` re-sends the dead letters.
        upstream.handler = None
        from router.cli import main

        assert main(["dlq", "replay", "up", "--data-dir", str(tmp_path / "d")]) == 0
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            accounts = await settle(rd)
            assert accounts["recovered"] == len(bad)
        assert set(users(upstream)) == set(names)
        with DeadLetters(tmp_path / "d") as dlq:
            assert dlq.count("up") == 0


async def test_replay_into_a_running_daemon(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.handler = lambda r: Reply(422) if b"late" in r.body else None
        config = relay(upstream.url)
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            await post(rd.client, ["late-1", "late-2", "early"])
            await settle(rd)
            upstream.handler = None
            with DeadLetters(tmp_path / "d") as dlq:
                assert dlq.replay("up") == 2
            with trio.fail_after(10):
                await upstream.wait_for(lambda u: {"late-1", "late-2"} <= set(users(u)))
            accounts = await settle(rd)
        assert accounts["balance"] == 0


async def test_spool_survives_a_restart(tmp_path, sample):
    config = relay("http://127.0.0.1:9")  # nothing listens on the discard port
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        sent = await post(rd.client, [f"p{i}" for i in range(25)])
    async with FakeUpstream.running() as upstream:
        async with running_daemon(
            relay(upstream.url), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            assert rd.metric("router_sink_events_recovered_total", sink="up") == 25
            accounts = await settle(rd)
        assert set(users(upstream)) == set(sent) and accounts["delivered"] == 25


async def test_memory_buffer_flushes_to_disk_on_shutdown(tmp_path, sample):
    config = relay("http://127.0.0.1:9", buffer="memory")
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        sent = await post(rd.client, [f"m{i}" for i in range(30)])
        assert rd.queue("up").pending_events == 30
    async with FakeUpstream.running() as upstream:
        async with running_daemon(
            relay(upstream.url, buffer="memory"), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            await settle(rd)
        assert set(users(upstream)) == set(sent)


async def test_a_down_sink_does_not_slow_ingest_or_other_sinks(tmp_path, sample):
    async with FakeUpstream.running() as healthy, FakeUpstream.running() as down:
        down.handler = lambda r: Delay(30)  # hangs every request until the client times out
        config = relay(healthy.url)
        config["sinks"]["slow"] = {
            "plugin": "sample",
            "url": down.url,
            "timeout": 30,
            "retry": FAST_RETRY,
        }
        config["routes"] = [{"from": "in", "to": ["up", "slow"]}]
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            sent = []
            for i in range(30):
                sent += await post(rd.client, [f"i{i}"])
            await settle(rd, "up")
            assert set(users(healthy)) == set(sent)
            assert rd.queue("slow").pending_events == 30


async def test_dedup_window_skips_a_repeated_event_id(tmp_path, sample, monkeypatch):
    from tests.helpers import sample_plugin

    # The sample vendor has no ids of its own; give its events a stable one for this test.
    original = sample_plugin.SampleCodec.decode

    def decode(self, raw, *, id, received_at, meta):
        return original(self, raw, id=f"id-{raw['user']}", received_at=received_at, meta=meta)

    monkeypatch.setattr(sample_plugin.SampleCodec, "decode", decode)
    async with FakeUpstream.running() as upstream:
        async with running_daemon(
            relay(upstream.url, dedup={"window": "1h"}), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            await post(rd.client, ["a", "b"])
            await post(rd.client, ["b", "c"])  # a client retry repeating "b"
            accounts = await settle(rd)
            assert rd.metric("router_sink_events_duplicate_total", sink="up") == 1
        assert users(upstream) == Counter({"a": 1, "b": 1, "c": 1})
        assert accounts["accepted"] == 3


async def test_outbound_rate_limit_spaces_requests(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        config = relay(
            upstream.url,
            batch={"max_events": 1, "max_wait": 0},
            max_concurrency=8,
            rate_limit={"requests_per_second": 20},
        )
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            started = trio.current_time()
            await post(rd.client, [f"l{i}" for i in range(30)])
            await settle(rd)
        times = sorted(r.received_at for r in upstream.requests)
        # 30 requests at 20/s with a burst of 20: the last cannot come before 0.5 s
        # after the first was allowed. Counted from before the events were sent:
        # the first arrival may be late (a slow connect on a loaded machine), the
        # last cannot be early.
        assert len(times) == 30
        assert times[-1] - started >= 0.45


async def test_routes_fan_out_and_filter_by_type(tmp_path, sample):
    async with FakeUpstream.running() as all_up, FakeUpstream.running() as buys:
        config = relay(all_up.url)
        config["sinks"]["buys"] = {"plugin": "sample", "url": buys.url, "batch": {"max_wait": 0.01}}
        config["routes"] = [
            {"from": "in", "to": "up"},
            {
                "from": "in",
                "to": "buys",
                "filter": {"types": ["purchase"], "match": {"identity.user_id": ["b1", "b2"]}},
            },
        ]
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            await post(rd.client, ["v1", "v2"], kind="view")
            await post(rd.client, ["b1", "b2", "b3"], kind="buy")
            await settle(rd, "up")
            await settle(rd, "buys")
        assert set(users(all_up)) == {"v1", "v2", "b1", "b2", "b3"}
        assert set(users(buys)) == {"b1", "b2"}


async def test_inbound_rate_limit_per_client(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        config = relay(upstream.url)
        config["sources"]["in"]["rate_limit"] = {"rate": 0.5, "burst": 3, "key": "header:x-client"}
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            body = {"events": [{"kind": "view", "user": "x"}]}
            answers = [
                await rd.client.post("/sample/events", json=body, headers={"x-client": "greedy"})
                for _ in range(4)
            ]
            assert [a.status_code for a in answers] == [202, 202, 202, 429]
            assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
            assert all(a.headers["x-ratelimit-limit"] == "3" for a in answers)
            refused = answers[-1]
            assert refused.headers["retry-after"] == "2"
            assert int(refused.headers["x-ratelimit-reset"]) > 0
            assert "rate limit of 0.5 requests/s exceeded" in refused.json()["sample_error"]
            other = await rd.client.post("/sample/events", json=body, headers={"x-client": "calm"})
            assert other.status_code == 202
            assert other.headers["x-ratelimit-remaining"] == "2"
            await settle(rd)


async def test_spool_full_with_block_answers_503_then_delivers_everything(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.refuse()
        config = relay(upstream.url, spool={"max_events": 40, "when_full": "block"})
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            accepted, statuses = [], Counter()
            for i in range(30):
                names = [f"f{i}-{j}" for j in range(3)]
                r = await rd.client.post(
                    "/sample/events", json={"events": [{"kind": "view", "user": n} for n in names]}
                )
                statuses[r.status_code] += 1
                if r.status_code == 202:
                    accepted += names
                else:
                    assert r.status_code == 503
                    assert r.headers["retry-after"] == "5"
                    assert "spool of sink 'up' is full" in r.json()["sample_error"]
            assert statuses[202] == 13 and statuses[503] == 17
            assert rd.queue("up").pending_events == 39
            await upstream.accept()
            accounts = await settle(rd, within=30)
        assert set(users(upstream)) == set(accepted)
        assert accounts["dropped"] == 0


async def test_spool_full_with_drop_newest_counts_the_drops(tmp_path, sample):
    config = relay("http://127.0.0.1:9", spool={"max_events": 10, "when_full": "drop_newest"})
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        for i in range(6):
            await post(rd.client, [f"d{i}-{j}" for j in range(3)])
        accounts = rd.reconcile("up")
        assert accounts["accepted"] == 18
        assert accounts["dropped"] == 9 and accounts["pending"] == 9
        assert accounts["balance"] == 0


async def test_a_failing_disk_answers_503_and_acknowledges_nothing(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        async with running_daemon(
            relay(upstream.url), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            spool = rd.daemon.resources.spool
            spool._db.execute("PRAGMA max_page_count = 1")  # SQLite's "disk full"
            big = [{"kind": "view", "user": f"x{i}" * 500} for i in range(20)]
            r = await rd.client.post("/sample/events", json={"events": big})
            assert r.status_code == 503
            assert r.headers["retry-after"] == "5"
            assert r.json() == {"sample_error": "could not store the events; retry later"}
            spool._db.execute("PRAGMA max_page_count = 1073741823")
            sent = await post(rd.client, ["after"])
            accounts = await settle(rd)
        assert set(users(upstream)) == set(sent)
        assert accounts["accepted"] == 1


async def test_readyz_reports_a_sink_failing_longer_than_its_threshold(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.refuse()
        async with running_daemon(
            relay(upstream.url, failing_after=0.3), data_dir=tmp_path / "d", plugins=sample
        ) as rd:
            await post(rd.client, ["r1"])
            with trio.fail_after(10):
                while rd.runner("up").failing_for() <= 0.3:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            r = await rd.client.get("/readyz")
            body = r.json()
            assert r.status_code == 200  # still accepting: events are spooled
            assert body["status"] == "degraded" and body["failing_sinks"] == ["up"]
            assert "connection failed" in body["sinks"]["up"]["last_error"]
            await upstream.accept()
            await settle(rd)
            body = (await rd.client.get("/readyz")).json()
            assert body["status"] == "ready" and body["failing_sinks"] == []


async def test_503_halves_concurrency_which_then_grows_back(tmp_path, sample):
    async with FakeUpstream.running() as upstream:
        upstream.script(Reply(503, headers={"retry-after": "0.1"}))
        config = relay(upstream.url, max_concurrency=8, batch={"max_events": 1, "max_wait": 0})
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            runner = rd.runner("up")
            await post(rd.client, ["first"])
            with trio.fail_after(5):
                while runner.concurrency.total_tokens == 8:  # noqa: ASYNC110
                    await trio.sleep(0.005)
            assert runner.concurrency.total_tokens == 4
            await post(rd.client, [f"c{i}" for i in range(100)])
            await settle(rd)
            assert runner.concurrency.total_tokens == 8


async def test_stopping_a_durable_sink_sends_nothing_new(tmp_path, sample):
    """Batches stay in the spool at shutdown; only calls already in flight may land."""
    async with FakeUpstream.running() as upstream:
        upstream.default = Reply(500)
        stopping = False
        after_stop = []
        upstream.handler = lambda r: after_stop.append(r) if stopping else None
        config = relay(upstream.url, max_concurrency=4)
        config["server"] = {"shutdown_timeout": 5}
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
            await post(rd.client, [f"s{i}" for i in range(80)])
            with trio.fail_after(5):
                await upstream.wait_for(20)
            stopping = True
        assert len(after_stop) <= 4, len(after_stop)
    async with running_daemon(
        relay("http://127.0.0.1:9"), data_dir=tmp_path / "d", plugins=sample
    ) as rd:
        assert rd.metric("router_sink_events_recovered_total", sink="up") == 80
