"""Backoff between delivery attempts: exponential with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Attempt ``n`` (1-based) waits a uniform random time in ``[0, min(maximum, initial·2ⁿ⁻¹)]``.

    Full jitter spreads the retries of many batches so a recovering upstream
    is not hit by all of them at once.
    """

    initial: float
    maximum: float

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.maximum, self.initial * 2 ** min(attempt - 1, 62))
        return rng() * ceiling
