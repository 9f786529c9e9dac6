"""ByteBudget: reservations, waiting for room, clamping, resizing, cancellation."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from router.inflight import ByteBudget


async def test_reservations_wait_for_room_and_a_large_one_is_clamped_and_goes_alone():
    budget = ByteBudget(100)
    assert budget.acquire_nowait(60) == 60
    with pytest.raises(trio.WouldBlock):
        budget.acquire_nowait(50)
    got = []

    async def big():
        got.append(await budget.acquire(1_000))  # clamped to the limit: waits for all

    async with trio.open_nursery() as nursery:
        nursery.start_soon(big)
        while not budget.waiting:
            await trio.lowlevel.checkpoint()
        assert not got
        budget.release(60)
    assert got == [100] and budget.held == 100
    budget.release(100)
    assert budget.held == 0


async def test_resize_frees_room_or_grows_past_the_limit_for_bytes_already_held():
    budget = ByteBudget(100)
    reserved = budget.acquire_nowait(80)
    held = budget.resize(reserved, 30)
    assert budget.held == 30 and budget.acquire_nowait(70) == 70
    budget.resize(held, 130)  # an oversized event already in memory: counted, no wait
    assert budget.held == 200
    with pytest.raises(trio.WouldBlock):
        budget.acquire_nowait(1)


async def test_a_cancelled_wait_reserves_nothing():
    budget = ByteBudget(10)
    budget.acquire_nowait(10)
    with trio.move_on_after(0.01):
        await budget.acquire(5)
    assert budget.held == 10 and budget.waiting == 0


def test_a_limit_below_one_byte_is_refused():
    with pytest.raises(ValueError, match="at least 1 byte"):
        ByteBudget(0)
