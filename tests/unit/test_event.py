"""The canonical event: ids, and the JSON form the file sink and `router translate` use."""

from __future__ import annotations

import os
import time
import uuid
from decimal import Decimal

from router import event as event_module
from router.event import (
    Context,
    Device,
    Event,
    Identity,
    Item,
    Money,
    Wallet,
    new_event_id,
    new_event_ids,
    now_ms,
)


def test_event_ids_are_unique_uuid7_in_time_order():
    ids = [new_event_id() for _ in range(20_000)] + new_event_ids(5_000)
    assert len(set(ids)) == len(ids)
    for value in (ids[0], ids[-1]):
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    before = new_event_id()
    time.sleep(0.002)
    assert new_event_id()[:13] > before[:13]  # the millisecond prefix sorts by time


def test_a_batch_of_ids_that_wraps_its_counter_stays_distinct_and_valid(monkeypatch):
    # The counter is the last 48 bits: a random start near the top wraps within the batch.
    monkeypatch.setattr(event_module._random, "getrandbits", lambda bits: (1 << 48) - 2)
    ids = new_event_ids(5)
    assert len(set(ids)) == 5
    assert [i[24:] for i in ids] == [
        "fffffffffffe",
        "ffffffffffff",
        "000000000000",
        "000000000001",
        "000000000002",
    ]
    assert all(uuid.UUID(i).version == 7 and len(i) == 36 for i in ids)


def test_a_forked_child_draws_other_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, new_event_ids(3)[0].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != new_event_ids(3)[0]
    assert child[24:] != new_event_ids(3)[0][24:]


def test_to_dict_and_back_keeps_everything():
    event = Event(
        id="e1",
        type="purchase",
        timestamp=1,
        received_at=2,
        vendor="x",
        source="in",
        identity=Identity(
            user_id="u", platform_ids={"discord": "7"}, wallet=Wallet(chain="solana", account="0x0")
        ),
        context=Context(channel="app", device=Device(os="ios")),
        items=[Item(id="i", price=Money(Decimal("12.50"), "EUR"), quantity=2, extra={"k": 1})],
        revenue=Money(Decimal("25.00"), "EUR"),
        extras={"x": {"raw": [1, 2]}},
    )
    data = event.to_dict()
    assert data["items"][0]["price"] == {"amount": "12.50", "currency": "EUR"}
    assert "order_id" not in data and "properties" not in data  # empty or None: left out
    assert Event.from_dict(data) == event


def test_identity_any():
    assert not Identity().any()
    assert Identity(wallet=Wallet(chain="c", account="a")).any()
    assert Identity(platform_ids={"telegram": "1"}).any()


def test_deterministic_ids_count_up_and_the_clock_stands_still():
    from router.event import DETERMINISTIC_TIME, deterministic

    with deterministic():
        first = new_event_id()
        batch = new_event_ids(3)
        assert now_ms() == DETERMINISTIC_TIME
    assert first == "018bcfe5-6800-7000-8000-000000000001"
    assert batch[-1] == "018bcfe5-6800-7000-8000-000000000004"
    assert all(uuid.UUID(i).version == 7 for i in [first, *batch])
    with deterministic(at=0):
        assert new_event_id() == "00000000-0000-7000-8000-000000000001"  # each block from 1
    # Off again outside the block: real time, random ids.
    assert now_ms() > DETERMINISTIC_TIME
    assert new_event_id() != first
