"""Shared steps of the Redis queue tests: take batches, call the suite's Redis directly."""

from __future__ import annotations

import coredis
import trio

from router.testing.redis import REDIS_URL


async def take(queue, expected: int, batch: int = 7, ack: bool = True) -> list:
    """Take (and ack) batches until ``expected`` entries came out."""
    out = []
    with trio.fail_after(10):
        while len(out) < expected:
            entries = await queue.get_batch(batch, 1 << 20, 0)
            out += entries
            if ack:
                await queue.ack(entries)
    return out


async def raw(fn):
    async with coredis.Redis.from_url(REDIS_URL) as client:
        return await fn(client)


class ReplyDroppingProxy:
    """A TCP proxy to Redis that, when armed, forwards one request and swallows its reply.

    The request runs in Redis; the client sees its connection die: a write
    whose outcome it cannot know.
    """

    def __init__(self) -> None:
        self.armed = False
        self.url = ""

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async def handle(client: trio.SocketStream) -> None:
            server = await trio.open_tcp_stream("127.0.0.1", 6379)
            async with client, server, trio.open_nursery() as nursery:

                async def upstream() -> None:
                    async for data in client:
                        await server.send_all(data)
                    nursery.cancel_scope.cancel()

                async def downstream() -> None:
                    async for data in server:
                        if self.armed:
                            self.armed = False
                            nursery.cancel_scope.cancel()  # the reply is lost
                            return
                        await client.send_all(data)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(upstream)
                nursery.start_soon(downstream)

        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"redis://127.0.0.1:{listeners[0].socket.getsockname()[1]}/0"
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handle, listeners)
            task_status.started()
