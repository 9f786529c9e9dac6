"""The serving process's collector settings, checked in a process of their own.

``gc.freeze`` in the test process would keep every later test's garbage.
"""

from __future__ import annotations

import json
import subprocess
import sys

from router import gcpolicy

PROBE = """
import gc, json
from router.gcpolicy import tune_for_serving
before = gc.get_stats()[0]["collections"]
tune_for_serving()
frozen = gc.get_freeze_count()
start = gc.get_stats()[0]["collections"]
for _ in range(200_000):
    cycle = []
    cycle.append(cycle)  # garbage only the collector can free
del cycle
print(json.dumps({
    "threshold": gc.get_threshold(),
    "frozen": frozen,
    "collections": gc.get_stats()[0]["collections"] - start,
    "alive": sum(1 for o in gc.get_objects() if type(o) is list and o and o[0] is o),
}))
"""


def probe() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)


def test_startup_objects_are_frozen_and_collections_rarer_but_still_run():
    seen = probe()
    assert seen["threshold"] == [
        gcpolicy.GEN0_THRESHOLD,
        gcpolicy.GEN1_THRESHOLD,
        gcpolicy.GEN2_THRESHOLD,
    ]
    assert seen["frozen"] > 1000  # the modules imported so far
    # 200,000 cycles of garbage: collected as they pile up, a threshold's worth at most left.
    assert 200_000 // gcpolicy.GEN0_THRESHOLD - 1 <= seen["collections"] < 200_000 // 700
    assert seen["alive"] <= gcpolicy.GEN0_THRESHOLD
