"""Rate limits: GCRA per key, for sources (inbound) and sinks (outbound).

GCRA (the generic cell rate algorithm) keeps one number per key, the
"theoretical arrival time", which makes it cheap locally and a single atomic
round trip in Redis (see :mod:`router.redislimit`). ``rate`` is events or
requests per second, ``burst`` how many may arrive at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import trio

__all__ = [
    "GCRA",
    "Decision",
    "InboundLimiter",
    "LocalLimiter",
    "OutboundLimiter",
    "SinkLimiter",
]

#: Keys of a local limiter beyond which idle ones are forgotten.
MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one rate-limit check, and what to tell the client."""

    allowed: bool
    limit: int
    remaining: int
    #: Seconds until the bucket is full again.
    reset_after: float
    #: Seconds until this request would have been allowed (0 if allowed).
    retry_after: float

    def headers(self, now: float | None = None) -> dict[str, str]:
        """``X-RateLimit-*`` (Reset as a Unix time) and, when refused, ``Retry-After``."""
        now = time.time() if now is None else now
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(now + self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


def gcra(
    tat: float, now: float, cost: float, interval: float, burst: int
) -> tuple[Decision, float]:
    """One GCRA step: the decision and the new theoretical arrival time.

    A cost above ``burst`` is allowed when the bucket is full (it empties it
    and the key waits for the debt to clear), so a large batch is never
    refused forever.
    """
    tolerance = interval * burst
    tat = max(tat, now)
    new_tat = tat + cost * interval
    allow_at = new_tat - tolerance
    if allow_at <= now or tat <= now:
        remaining = max(0, math.floor((now - (new_tat - tolerance)) / interval))
        return Decision(True, burst, remaining, new_tat - now, 0.0), new_tat
    remaining = max(0, math.floor((now - (tat - tolerance)) / interval))
    return Decision(False, burst, remaining, tat - now, allow_at - now), tat


class GCRA:
    """A local GCRA limiter for any number of keys."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.interval = 1.0 / rate if rate > 0 else math.inf
        self.clock = clock
        self._tat: dict[str, float] = {}

    def take(self, key: str, cost: float = 1) -> Decision:
        now = self.clock()
        if self.rate <= 0:
            return Decision(False, self.burst, 0, math.inf, math.inf)
        decision, tat = gcra(self._tat.get(key, now), now, cost, self.interval, self.burst)
        if decision.allowed:
            if len(self._tat) >= MAX_KEYS and key not in self._tat:
                self._forget_idle(now)
            self._tat[key] = tat
        return decision

    def _forget_idle(self, now: float) -> None:
        # A key whose tat is in the past has a full bucket: the same as no entry.
        self._tat = {k: t for k, t in self._tat.items() if t > now}


class InboundLimiter(Protocol):
    """A source's limit (``rate_limit`` on a source): kept here, or shared through Redis."""

    async def check(self, key: str, cost: int) -> Decision:
        """Take ``cost`` events from ``key``'s allowance, or say when to retry."""
        ...


class SinkLimiter(Protocol):
    """A sink's requests/s and events/s limits (``rate_limit`` on a sink)."""

    async def acquire(self, events: int) -> None:
        """Wait until one request of ``events`` events is allowed."""
        ...


class LocalLimiter:
    """An inbound limit kept in this process."""

    def __init__(self, rate: float, burst: int):
        self.gcra = GCRA(rate, burst)

    async def check(self, key: str, cost: int) -> Decision:
        return self.gcra.take(key, cost)


class OutboundLimiter:
    """A sink's requests/s and events/s limits; :meth:`acquire` waits for both."""

    def __init__(self, requests_per_second: float | None, events_per_second: float | None):
        self.requests = (
            GCRA(
                requests_per_second, max(1, math.ceil(requests_per_second)), clock=trio.current_time
            )
            if requests_per_second
            else None
        )
        self.events = (
            GCRA(events_per_second, max(1, math.ceil(events_per_second)), clock=trio.current_time)
            if events_per_second
            else None
        )

    async def acquire(self, events: int) -> None:
        for limiter, cost in ((self.requests, 1), (self.events, events)):
            while limiter is not None:
                decision = limiter.take("", cost)
                if decision.allowed:
                    break
                await trio.sleep(decision.retry_after)
