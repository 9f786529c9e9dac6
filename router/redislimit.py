"""``rate_limit: {backend: redis}``: limits shared by every daemon, one round trip per decision.

The GCRA of :func:`router.ratelimit.gcra`, step for step, in one Lua script
(EVALSHA; loaded again after a Redis restart). The clock is Redis's own
``TIME``, so daemons whose clocks disagree still share one limit. A key's
"theoretical arrival time" is stored with an expiry at the moment its bucket
is full again, so idle keys cost nothing.

When Redis cannot be reached, ``on_backend_error`` decides:

- ``fail_open`` (default): decide with a local GCRA of the same rate (each
  daemon then allows the full rate: up to N times the limit with N daemons)
  and count ``router_ratelimit_backend_errors_total``;
- ``fail_closed``: a source answers 429 with ``Retry-After: 1``; a sink waits
  and asks again.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import structlog
import trio
from coredis.exceptions import RedisError

from router.ratelimit import GCRA, Decision, OutboundLimiter
from router.redisconn import RedisUnavailable

if TYPE_CHECKING:
    from router.metrics import Metrics
    from router.redisconn import RedisLink

__all__ = ["GCRA_SCRIPT", "RedisLimiter", "RedisOutboundLimiter", "redis_gcra"]

log = structlog.get_logger()

#: Seconds a ``fail_closed`` limit tells clients to wait while Redis is unreachable.
CLOSED_RETRY_AFTER = 1.0

# KEYS: the limit's key. ARGV: interval (s), burst, cost, and a clock value for tests
# ('' to use Redis TIME). Returns {allowed, remaining, reset_after, retry_after}, the
# floats as strings (Lua numbers would come back truncated to integers).
GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
local slack = 0
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
  slack = 60000  -- a test's clock is not Redis's: do not let the key expire under it
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance
if allow_at <= now or tat <= now then
  local remaining = math.max(0, math.floor((now - (new_tat - tolerance)) / interval))
  local ttl = math.max(1, math.ceil((new_tat - now) * 1000)) + slack
  redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'PX', ttl)
  return {1, remaining, string.format('%.17g', new_tat - now), '0'}
end
local remaining = math.max(0, math.floor((now - (tat - tolerance)) / interval))
return {0, remaining, string.format('%.17g', tat - now), string.format('%.17g', allow_at - now)}
"""


async def redis_gcra(
    link: RedisLink,
    key: str,
    rate: float,
    burst: int,
    cost: float,
    *,
    now: float | None = None,
) -> Decision:
    """One GCRA step on ``key`` in Redis (``now`` overrides Redis's clock, for tests).

    :raises RedisUnavailable: Redis could not be reached.
    """
    if rate <= 0:
        return Decision(False, burst, 0, math.inf, math.inf)
    args = [repr(1.0 / rate), str(burst), repr(float(cost)), "" if now is None else repr(now)]
    allowed, remaining, reset_after, retry_after = await link.call(
        "ratelimit", lambda c: link.eval(c, GCRA_SCRIPT, [key], args)
    )
    return Decision(bool(allowed), burst, int(remaining), float(reset_after), float(retry_after))


class _Fallback:
    """What a Redis limit does when Redis fails: count it, warn once per outage."""

    def __init__(self, link: RedisLink, scope: str, metrics: Metrics | None):
        self.link = link
        self.scope = scope
        self.metrics = metrics
        self.warned = False

    def failed(self, exc: Exception, mode: str) -> None:
        if self.metrics is not None:
            self.metrics.ratelimit_backend_errors.labels(self.scope).inc()
        if not self.warned:
            self.warned = True
            log.warning(
                "ratelimit.backend_unavailable",
                limit=self.scope,
                on_backend_error=mode,
                error=str(exc),
            )

    def recovered(self) -> None:
        if self.warned:
            self.warned = False
            log.info("ratelimit.backend_recovered", limit=self.scope)


class RedisLimiter:
    """A source's inbound limit shared through Redis; the interface of ``LocalLimiter``."""

    def __init__(
        self,
        link: RedisLink,
        source: str,
        rate: float,
        burst: int,
        *,
        on_backend_error: str = "fail_open",
        metrics: Metrics | None = None,
    ):
        self.link = link
        self.source = source
        self.rate = rate
        self.burst = burst
        self.on_backend_error = on_backend_error
        self.local = GCRA(rate, burst)
        self.fallback = _Fallback(link, f"source:{source}", metrics)

    def key(self, key: str) -> str:
        """``{<prefix>:rl:<source>}:<key>`` (ingest passes ``<source>:<key>``)."""
        prefix = f"{self.source}:"
        return self.link.key(f"rl:{self.source}", key.removeprefix(prefix))

    async def check(self, key: str, cost: int) -> Decision:
        try:
            decision = await redis_gcra(self.link, self.key(key), self.rate, self.burst, cost)
        except (RedisError, RedisUnavailable) as exc:
            self.fallback.failed(exc, self.on_backend_error)
            if self.on_backend_error == "fail_open":
                return self.local.take(key, cost)
            return Decision(False, self.burst, 0, CLOSED_RETRY_AFTER, CLOSED_RETRY_AFTER)
        self.fallback.recovered()
        return decision


class RedisOutboundLimiter:
    """A sink's requests/s and events/s shared through Redis; the interface of OutboundLimiter."""

    def __init__(
        self,
        link: RedisLink,
        sink: str,
        requests_per_second: float | None,
        events_per_second: float | None,
        *,
        on_backend_error: str = "fail_open",
        metrics: Metrics | None = None,
    ):
        self.link = link
        self.on_backend_error = on_backend_error
        self.limits = [
            (link.key(f"rl:sink:{sink}", part), rate, max(1, math.ceil(rate)), unit_cost)
            for part, rate, unit_cost in (
                ("requests", requests_per_second, False),
                ("events", events_per_second, True),
            )
            if rate
        ]
        self.local = OutboundLimiter(requests_per_second, events_per_second)
        self.fallback = _Fallback(link, f"sink:{sink}", metrics)

    async def acquire(self, events: int) -> None:
        """Wait until both limits allow a request of ``events`` events."""
        attempt = 0
        for key, rate, burst, per_event in self.limits:
            cost = events if per_event else 1
            while True:
                try:
                    decision = await redis_gcra(self.link, key, rate, burst, cost)
                except (RedisError, RedisUnavailable) as exc:
                    self.fallback.failed(exc, self.on_backend_error)
                    if self.on_backend_error == "fail_open":
                        await self.local.acquire(events)
                        return
                    attempt += 1
                    await trio.sleep(self.link.backoff.delay(attempt) or CLOSED_RETRY_AFTER / 10)
                    continue
                self.fallback.recovered()
                if decision.allowed:
                    break
                await trio.sleep(decision.retry_after)
