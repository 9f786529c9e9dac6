"""The queue's Lua scripts run directly on the suite's real Redis."""

from __future__ import annotations

import coredis
import pytest

from router.redisscripts import ACK, HEAD, REQUEUE, text
from router.testing.redis import REDIS_URL

pytestmark = pytest.mark.redis


def test_text_decodes_bytes_and_keeps_strings():
    assert text(b"1-0") == "1-0" == text("1-0")


async def test_ack_deletes_and_counts_only_entries_still_there(redis_prefix):
    stream, size_key = f"{redis_prefix}:s", f"{redis_prefix}:b"
    async with coredis.Redis.from_url(REDIS_URL) as client:
        await client.xgroup_create(stream, "g", "0", mkstream=True)
        ids = [await client.xadd(stream, {"p": b"x" * n}) for n in (3, 5)]
        await client.set(size_key, "8")
        await client.xreadgroup("g", "c", {stream: ">"})
        args = ["g", f"{text(ids[0])} {text(ids[1])}", "3 5"]
        assert await client.eval(ACK, [stream, size_key], args) == [2, 8]
        assert await client.eval(ACK, [stream, size_key], args) == [0, 0]  # gone already
        assert await client.xlen(stream) == 0 and int(await client.get(size_key)) == 0


async def test_requeue_moves_an_entry_to_the_end_without_its_replay_mark(redis_prefix):
    stream = f"{redis_prefix}:s"
    async with coredis.Redis.from_url(REDIS_URL) as client:
        await client.xgroup_create(stream, "g", "0", mkstream=True)
        first = await client.xadd(stream, {"e": "a", "p": "{}", "r": "1"})
        await client.xadd(stream, {"e": "b", "p": "{}"})
        await client.xreadgroup("g", "c", {stream: ">"}, count=1)
        assert await client.eval(REQUEUE, [stream], ["g", text(first)]) == 1
        found = await client.xrange(stream)
        assert [item.field_values for item in found] == [
            {b"e": b"b", b"p": b"{}"},
            {b"e": b"a", b"p": b"{}"},
        ]
        assert (await client.xpending(stream, "g")).pending == 0


async def test_head_is_the_first_entrys_id_and_enqueue_time_without_its_payload(redis_prefix):
    stream = f"{redis_prefix}:s"
    async with coredis.Redis.from_url(REDIS_URL) as client:
        assert await client.eval(HEAD, [stream], []) == []
        first = await client.xadd(stream, {"e": "a", "p": b"x" * 1000, "t": "12.5"})
        await client.xadd(stream, {"e": "b", "p": "{}", "t": "13.5"})
        assert [text(v) for v in await client.eval(HEAD, [stream], [])] == [text(first), "12.5"]
        await client.xdel(stream, [first])
        assert [text(v) for v in await client.eval(HEAD, [stream], [])][1] == "13.5"
        # An entry without an enqueue time (none the router writes) answers with ''.
        other = f"{redis_prefix}:untimed"
        untimed = await client.xadd(other, {"e": "c", "p": "{}"})
        assert [text(v) for v in await client.eval(HEAD, [other], [])] == [text(untimed), ""]
