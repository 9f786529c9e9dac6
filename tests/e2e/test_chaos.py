"""Chaos: a flapping upstream and two kill -9 restarts, against a known set of event ids.

The daemon runs as a real process on a durable spool. The upstream cycles
through healthy, 500, 429 with Retry-After, reset-after-store (it keeps the
events, then answers with a TCP RST, so the router retries and a duplicate
arises) and stalls (no answer; the sink's timeout gives up), and answers 400
to every request holding a poison event. Clients send events with known ids
and note exactly which got a 2xx; the daemon is killed with SIGKILL twice
and restarted on the same data dir. Then the upstream heals and the spool
drains, and:

- every acknowledged id was stored by the upstream or dead-lettered, none lost;
- the dead letters are exactly the poison events, each once, with its 400;
- every duplicate is explained: a reset-after-store, or a crash between two
  stores of the same event (at-least-once allows nothing else);
- the counters of the last daemon run reconcile.
"""

from __future__ import annotations

import itertools
import random
import signal
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from router.deadletters import DeadLetters
from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream, Hang, RecordedRequest, Reply, Reset
from tests.helpers.conscent_traffic import ping, relay_config

#: The upstream's cycle of behaviours: (fault, seconds).
CYCLE = [
    ("ok", 1.2),
    ("500", 1.2),
    ("ok", 0.8),
    ("429", 0.4),
    ("ok", 0.8),
    ("reset", 1.2),
    ("ok", 0.8),
    ("stall", 1.2),
]
#: Seconds of traffic, and when (in seconds of traffic) the daemon is killed.
LOAD_SECONDS = 24
KILLS_AT = (8, 16)
CLIENTS = 4
EVENTS_PER_REQUEST = 5
#: One event in this many is poison: the upstream refuses any request holding one.
POISON_EVERY = 97


def user_ids(request: RecordedRequest) -> list[str]:
    return [e["userId"] for e in request.json()["messageBody"]]


@dataclass
class Chaos:
    """What the upstream did: the faults it chose and every store, with its time."""

    started: float = 0.0
    healed: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    cases: Counter = field(default_factory=Counter)
    #: id -> ``(time, reset)`` of each time the upstream stored it (2xx, or reset-after-store)
    stores: defaultdict = field(default_factory=lambda: defaultdict(list))

    def fault(self) -> str:
        if self.healed:
            return "ok"
        at = (trio.current_time() - self.started) % sum(s for _, s in CYCLE)
        for fault, seconds in CYCLE:
            if at < seconds:
                return fault
            at -= seconds
        return "ok"

    def handle(self, request: RecordedRequest):
        fault = self.fault()
        ids = user_ids(request)
        if fault == "500":
            action = Reply(500, b"busy")
        elif fault == "429":
            action = Reply(429, headers={"retry-after": "1"})
        elif fault == "stall":
            action = Hang()
        elif any(i.startswith("poison") for i in ids):
            fault, action = "400", Reply(400, b'{"error":"poison event"}')
        elif fault == "reset" and self.rng.random() < 0.5:
            action = Reset()
        else:
            fault, action = "ok", Reply(201)
        self.cases[fault] += 1
        if isinstance(action, Reset) or fault == "ok":
            now = trio.current_time()
            for i in ids:
                self.stores[i].append((now, isinstance(action, Reset)))
        return action


def scrape(text: str, sink: str) -> dict[str, float]:
    """Sink counters from a /metrics page, summed over their reasons."""
    totals: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("sink") == sink:
                totals[sample.name] += sample.value
    return {
        "recovered": totals["router_sink_events_recovered_total"],
        "accepted": totals["router_sink_events_accepted_total"],
        "replayed": totals["router_sink_events_replayed_total"],
        "delivered": totals["router_sink_events_delivered_total"],
        "dead_lettered": totals["router_sink_events_dead_lettered_total"],
        "dropped": totals["router_sink_events_dropped_total"],
        "pending": totals["router_sink_events_queued"],
    }


@pytest.mark.slow
async def test_chaos_every_acknowledged_event_is_delivered_or_dead_lettered(tmp_path):
    chaos = Chaos()
    acked: set[str] = set()
    sent: set[str] = set()
    statuses: Counter = Counter()
    kills: list[float] = []
    serial = itertools.count()
    async with FakeUpstream.running() as upstream:
        upstream.handler = chaos.handle
        data_dir = tmp_path / "d"
        args = [
            "run",
            "-c",
            relay_config(
                tmp_path,
                upstream.url,
                timeout=2,
                max_concurrency=4,
                retry={"initial_backoff": 0.02, "max_backoff": 0.5, "max_attempts": 100000},
            ),
            "--bind",
            "127.0.0.1:0",
        ]
        args += ["--data-dir", str(data_dir)]
        daemon: DaemonProcess | None = None

        async def client(stop: trio.Event) -> None:
            async with httpx.AsyncClient(timeout=5) as http:
                while not stop.is_set():
                    ids = []
                    for _ in range(EVENTS_PER_REQUEST):
                        n = next(serial)
                        ids.append(f"poison-{n}" if n % POISON_EVERY == 0 else f"ev-{n}")
                    sent.update(ids)
                    body = {"messageBody": [ping(i) for i in ids]}
                    try:
                        r = await http.post(f"{daemon.url}/collect/event", json=body)
                    except httpx.TransportError:
                        statuses["transport error"] += 1  # killed under us: not acknowledged
                        await trio.sleep(0.05)
                        continue
                    statuses[r.status_code] += 1
                    if r.status_code == 201:
                        acked.update(ids)
                    await trio.sleep(0.03)

        with trio.fail_after(150):
            async with trio.open_nursery() as nursery:  # the daemons' log readers
                daemon = await DaemonProcess(args).start(nursery)
                chaos.started = trio.current_time()
                stop = trio.Event()
                async with trio.open_nursery() as clients:
                    for _ in range(CLIENTS):
                        clients.start_soon(client, stop)
                    for kill_at in KILLS_AT:
                        await trio.sleep_until(chaos.started + kill_at)
                        daemon.kill()
                        assert await daemon.wait() == -signal.SIGKILL
                        kills.append(trio.current_time())
                        daemon = await DaemonProcess(args).start(nursery)
                    await trio.sleep_until(chaos.started + LOAD_SECONDS)
                    stop.set()

                # Heal the upstream and let the last daemon drain its spool.
                chaos.healed = True
                async with httpx.AsyncClient(base_url=daemon.url, timeout=5) as http:
                    while (await http.get("/readyz")).json()["sinks"]["conscent"]["pending"]:  # noqa: ASYNC110
                        await trio.sleep(0.1)
                    accounts = scrape((await http.get("/metrics")).text, "conscent")
                daemon.signal(signal.SIGTERM)
                assert await daemon.wait() == 0

    with DeadLetters(data_dir) as dlq:
        letters = dlq.list("conscent", limit=1_000_000)
    dead = Counter(orjson.loads(d.payload)["userId"] for d in letters)
    stored = {i for i, times in chaos.stores.items() if times}
    poison_acked = {i for i in acked if i.startswith("poison")}
    lost = acked - stored - set(dead)
    # Each store after an event's first is a duplicate, explained by what came
    # between it and the store before: a reset-after-store, or a crash.
    causes: Counter = Counter()
    after_crash: Counter = Counter()  # per kill: events stored again after it
    unexplained = []
    for event_id, stores in chaos.stores.items():
        for (before, was_reset), (at, _) in itertools.pairwise(stores):
            crash = next((n for n, k in enumerate(kills) if before < k < at), None)
            if was_reset:
                causes["reset"] += 1
            elif crash is not None:
                causes["crash"] += 1
                after_crash[crash] += 1
            else:
                unexplained.append(event_id)

    cases = sum(chaos.cases.values())
    print(
        f"\nchaos: {cases} upstream requests {dict(chaos.cases)}; ingest answers "
        f"{dict(statuses)}; {len(sent)} events sent, {len(acked)} acknowledged, "
        f"{len(stored & acked)} delivered, {sum(dead.values())} dead-lettered, "
        f"{sum(causes.values())} duplicates ({dict(causes)}; per crash "
        f"{[after_crash[n] for n in range(len(kills))]}), {len(lost)} lost; "
        f"last run {accounts}"
    )
    assert chaos.cases["500"] and chaos.cases["429"] and chaos.cases["400"]
    assert chaos.cases["reset"] and chaos.cases["stall"] and len(kills) == 2
    assert not lost, sorted(lost)[:20]
    # The dead letters are the poison events, each once, refused with a 400.
    assert set(dead) <= {i for i in sent if i.startswith("poison")}
    assert poison_acked <= set(dead)
    assert max(dead.values()) == 1, [i for i, n in dead.items() if n > 1]
    assert all(d.reason == "rejected" and d.status == 400 for d in letters)
    assert not {i for i in stored if i.startswith("poison")}
    assert statuses.keys() <= {201, 503, "transport error"}, statuses
    assert not unexplained, sorted(unexplained)[:20]
    balance = (
        accounts["recovered"]
        + accounts["accepted"]
        + accounts["replayed"]
        - accounts["delivered"]
        - accounts["dead_lettered"]
        - accounts["dropped"]
        - accounts["pending"]
    )
    assert balance == 0 and accounts["pending"] == 0, accounts
