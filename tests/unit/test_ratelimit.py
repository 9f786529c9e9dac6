"""GCRA: the decision, the headers, the local limiter and the outbound limiter."""

from __future__ import annotations

import trio
import trio.testing

from router import ratelimit
from router.ratelimit import GCRA, Decision, OutboundLimiter, gcra


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_one_interval_passes():
    clock = Clock()
    limiter = GCRA(rate=2, burst=3, clock=clock)
    decisions = [limiter.take("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after == 0.5
    clock.now += 0.5
    assert limiter.take("k").allowed


def test_keys_are_limited_separately():
    limiter = GCRA(rate=1, burst=1, clock=Clock())
    assert limiter.take("a").allowed and limiter.take("b").allowed
    assert not limiter.take("a").allowed


def test_a_cost_above_the_burst_passes_on_a_full_bucket_and_then_waits_off_the_debt():
    clock = Clock()
    limiter = GCRA(rate=1, burst=2, clock=clock)
    assert limiter.take("k", cost=5).allowed
    refused = limiter.take("k")
    assert not refused.allowed and refused.retry_after == 4.0
    clock.now += 4.0
    assert limiter.take("k").allowed


def test_a_refused_take_leaves_the_state_as_it_was():
    decision, tat = gcra(tat=110.0, now=100.0, cost=1, interval=1.0, burst=5)
    assert not decision.allowed and tat == 110.0


def test_a_zero_rate_refuses_everything():
    decision = GCRA(rate=0, burst=1, clock=Clock()).take("k")
    assert not decision.allowed and decision.remaining == 0


def test_idle_keys_are_forgotten_beyond_max_keys(monkeypatch):
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 3)
    clock = Clock()
    limiter = GCRA(rate=1, burst=1, clock=clock)
    for key in "abc":
        limiter.take(key)
    clock.now += 10  # every bucket is full again
    limiter.take("d")
    assert set(limiter._tat) == {"d"}


def test_headers_give_reset_as_a_unix_time_and_retry_after_only_when_refused():
    allowed = Decision(True, limit=10, remaining=4, reset_after=2.2, retry_after=0.0)
    assert allowed.headers(now=1000.0) == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": "1003",
    }
    refused = Decision(False, limit=10, remaining=0, reset_after=5.0, retry_after=0.2)
    assert refused.headers(now=1000.0)["Retry-After"] == "1"  # never 0: clients retry at once


async def test_the_outbound_limiter_waits_for_both_limits(autojump_clock):
    limiter = OutboundLimiter(requests_per_second=10, events_per_second=4)
    start = trio.current_time()
    await limiter.acquire(4)  # the full burst of events
    await limiter.acquire(4)  # waits for 4 more events at 4/s
    assert trio.current_time() - start == 1.0


async def test_an_outbound_limiter_without_limits_never_waits(autojump_clock):
    limiter = OutboundLimiter(None, None)
    start = trio.current_time()
    for _ in range(100):
        await limiter.acquire(1000)
    assert trio.current_time() == start
