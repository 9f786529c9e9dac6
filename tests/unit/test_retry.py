"""Backoff: exponential ceilings with full jitter."""

from __future__ import annotations

import pytest

from router.retry import Backoff


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (50, 5.0)]
)
def test_the_ceiling_doubles_per_attempt_up_to_the_maximum(attempt, ceiling):
    backoff = Backoff(initial=0.5, maximum=5.0)
    assert backoff.delay(attempt, rng=lambda: 1.0) == ceiling
    assert backoff.delay(attempt, rng=lambda: 0.0) == 0.0


def test_the_delay_is_a_uniform_fraction_of_the_ceiling():
    assert Backoff(initial=1.0, maximum=60.0).delay(3, rng=lambda: 0.25) == 1.0


def test_a_huge_attempt_number_does_not_overflow():
    """Attempts are not capped by the caller; 2**(n-1) for a large n must still be a float."""
    assert Backoff(initial=1.0, maximum=30.0).delay(10_000, rng=lambda: 1.0) == 30.0


def test_the_default_jitter_stays_within_the_ceiling():
    backoff = Backoff(initial=0.1, maximum=1.0)
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(0.0 <= d <= 0.4 for d in delays)
    assert len(set(delays)) > 1
