"""Traffic of the test vendor "sample" (tests/helpers/sample_plugin.py) for end-to-end tests."""

from __future__ import annotations

from collections import Counter

import trio

from router.testing.upstream import FakeUpstream

FAST_RETRY = {"initial_backoff": 0.02, "max_backoff": 0.3, "max_attempts": 1000}


def relay(url: str, **sink) -> dict:
    """sample source -> sample sink ``up`` at ``url``, with fast retries; ``sink`` adds options."""
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {
            "up": {
                "plugin": "sample",
                "url": url,
                "api_key": "k",
                "batch": {"max_events": 20, "max_wait": 0.01},
                "retry": FAST_RETRY,
                "timeout": 2,
                **sink,
            }
        },
        "routes": [{"from": "in", "to": "up"}],
    }


def users(upstream: FakeUpstream) -> Counter:
    """How many times each event (by user) reached the upstream with a 2xx."""
    return Counter(e["user"] for r in upstream.accepted for e in r.json()["events"])


async def post(client, names, kind="view"):
    r = await client.post(
        "/sample/events", json={"events": [{"kind": kind, "user": n} for n in names]}
    )
    assert r.status_code == 202, r.text
    return list(names)


async def settle(rd, sink="up", within=30):
    """Wait until the sink has nothing pending; return its reconciled counters."""
    with trio.fail_after(within):
        while rd.queue(sink).pending_events:  # noqa: ASYNC110
            await trio.sleep(0.02)
    accounts = rd.reconcile(sink)
    assert accounts["balance"] == 0, str(accounts)
    return accounts
