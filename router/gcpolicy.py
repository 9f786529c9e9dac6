"""The garbage collector's settings for a process that serves (``router run``).

A request allocates hundreds of containers (its parsed JSON, its reply), so
with CPython's default first-generation threshold of 700 a collection ran
every request or two, each one traversing every request in flight and the
objects of startup. Objects without reference cycles are freed by reference
counting whatever these settings are; only cyclic garbage waits longer, and
at most ``GEN0_THRESHOLD`` allocations.

Not applied where the daemon runs inside another program (tests, embedding):
``gc.freeze`` there would keep that program's garbage forever.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_for_serving"]

#: Net container allocations between first-generation collections (CPython: 700).
GEN0_THRESHOLD = 20_000
#: First- and second-generation collections between older ones (CPython: 10, 10).
GEN1_THRESHOLD = 50
GEN2_THRESHOLD = 100


def tune_for_serving() -> None:
    """Move the objects alive now (modules, config, compiled validators) out of the
    collector's reach, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
