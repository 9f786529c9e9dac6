"""Redis dead letters on the suite's real Redis: list, show, replay, purge."""

from __future__ import annotations

import pytest

from router.redisqueue import RedisDeadLetters, RedisQueue
from router.testing.redis import open_test_link
from tests.helpers.redisqueues import take

pytestmark = pytest.mark.redis


async def test_dead_letters_list_show_replay_and_purge(redis_prefix):
    replays = []
    async with open_test_link(redis_prefix) as (link, start):
        queue = RedisQueue(link, "s")
        queue.on_replayed = replays.append
        await start()
        await queue.put([(f"e{i}", f'{{"n":{i}}}'.encode()) for i in range(4)], 10.0)
        batch = await queue.get_batch(3, 1 << 20, 0)
        await queue.dead_letter(
            batch[:2], reason="rejected", attempts=3, status=400, response="bad field"
        )
        await queue.dead_letter_new([("new", b"{}", "untranslatable: no type")], 20.0)
        assert queue.pending_events == 2  # e2 (in flight) and e3
        dlq = RedisDeadLetters(link, "s")
        assert await dlq.count() == 3
        letters = await dlq.list()
        assert [(d.id, d.event_id, d.reason) for d in letters] == [
            (1, "e0", "rejected"),
            (2, "e1", "rejected"),
            (3, "new", "untranslatable: no type"),
        ]
        first = await dlq.get(1)
        assert (first.status, first.response, first.attempts) == (400, "bad field", 3)
        assert first.payload == b'{"n":0}' and first.enqueued_at == 10.0
        assert (await dlq.get(3)).status is None
        assert await dlq.get(99) is None
        assert [d.id for d in await dlq.list(offset=1, limit=1)] == [2]
        # Replay puts them back at the end of the stream; the queue counts replays.
        assert await dlq.replay([1, 2]) == 2
        await queue.ack(batch[2:])
        got = await take(queue, 3)
        assert [e.event_id for e in got] == ["e3", "e0", "e1"]
        assert replays == [2]
        assert await dlq.purge() == 1
        assert await dlq.count() == 0
        # Ids keep growing after a purge.
        await queue.dead_letter_new([("later", b"{}", "x")], 30.0)
        assert [d.id for d in await dlq.list()] == [4]
