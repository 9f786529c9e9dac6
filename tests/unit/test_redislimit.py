"""The Lua GCRA against router.ratelimit.gcra, and what a Redis limit does without Redis."""

from __future__ import annotations

import random

import pytest
import trio

from router.ratelimit import gcra
from router.redislimit import RedisLimiter, RedisOutboundLimiter, redis_gcra
from router.testing.redis import open_test_link

pytestmark = pytest.mark.redis


def local_steps(calls, rate, burst):
    """The Python GCRA on the same calls: (decision, tat) per call, tat kept when allowed."""
    interval = 1.0 / rate
    tat = None
    out = []
    for now, cost in calls:
        decision, new_tat = gcra(now if tat is None else tat, now, cost, interval, burst)
        if decision.allowed:
            tat = new_tat
        out.append(decision)
    return out


@pytest.mark.parametrize(("rate", "burst"), [(10.0, 5), (0.5, 1), (1000.0, 50), (3.3, 7)])
async def test_lua_gcra_agrees_with_the_python_gcra(redis_prefix, rate, burst):
    rng = random.Random(f"{rate}-{burst}")
    now = 1_700_000_000.123456
    calls = []
    for _ in range(200):
        now += rng.choice([0.0, 0.0, 0.001, 0.01, 0.1, 1 / rate, 2.5 / rate, 10.0])
        calls.append((now, rng.choice([1, 1, 1, 2, 5, burst, burst + 3])))
    expected = local_steps(calls, rate, burst)
    async with open_test_link(redis_prefix) as (link, start):
        await start()
        got = [
            await redis_gcra(link, link.key("rl:t", "k"), rate, burst, cost, now=t)
            for t, cost in calls
        ]
    assert sum(d.allowed for d in expected) not in (0, len(calls))  # both outcomes exercised
    for i, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        assert mine.allowed == theirs.allowed, i
        assert mine.remaining == theirs.remaining, i
        assert mine.limit == theirs.limit
        assert mine.reset_after == pytest.approx(theirs.reset_after, abs=1e-6), i
        assert mine.retry_after == pytest.approx(theirs.retry_after, abs=1e-6), i


async def test_keys_expire_when_their_bucket_is_full_again(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        await start()
        key = link.key("rl:t", "k")
        await redis_gcra(link, key, 100.0, 10, 5)
        ttl = await link.call("t", lambda c: c.pttl(key))
        assert 0 < ttl <= 50


async def test_source_limit_is_shared_through_redis(redis_prefix):
    async with (
        open_test_link(redis_prefix, consumer="a") as (link_a, start_a),
        open_test_link(redis_prefix, consumer="b") as (link_b, start_b),
    ):
        await start_a()
        await start_b()
        a = RedisLimiter(link_a, "in", 1.0, 3)
        b = RedisLimiter(link_b, "in", 1.0, 3)
        assert a.key("in:1.2.3.4") == f"{{{redis_prefix}:rl:in}}:1.2.3.4"
        outcomes = [(await lim.check("in:ip", 1)).allowed for lim in (a, b, a, b)]
        assert outcomes == [True, True, True, False]


async def test_without_redis_fail_open_limits_locally_and_fail_closed_refuses():
    async with open_test_link("x", url="redis://127.0.0.1:9/0", connect_timeout=0.2) as (
        link,
        start,
    ):
        await start()
        opened = RedisLimiter(link, "in", 1.0, 2, on_backend_error="fail_open")
        closed = RedisLimiter(link, "in", 1.0, 2, on_backend_error="fail_closed")
        assert [(await opened.check("k", 1)).allowed for _ in range(3)] == [True, True, False]
        refused = await closed.check("k", 1)
        assert not refused.allowed and refused.headers()["Retry-After"] == "1"
        # A sink's fail_open limit falls back to its local limits and does not block.
        outbound = RedisOutboundLimiter(link, "up", 100.0, None, on_backend_error="fail_open")
        with trio.fail_after(1):
            await outbound.acquire(1)
        # fail_closed waits for Redis.
        outbound = RedisOutboundLimiter(link, "up", 100.0, None, on_backend_error="fail_closed")
        with trio.move_on_after(0.3) as waited:
            await outbound.acquire(1)
        assert waited.cancelled_caught
