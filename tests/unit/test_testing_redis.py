"""Test helpers for Redis: prefixes, deleting them, free ports, a redis-server of one's own."""

from __future__ import annotations

import socket

import coredis
import pytest

from router.testing.redis import REDIS_URL, RedisServer, delete_prefix, free_port, new_prefix

pytestmark = pytest.mark.redis


def test_prefixes_are_new_each_time():
    prefixes = {new_prefix() for _ in range(100)}
    assert len(prefixes) == 100


async def test_delete_prefix_deletes_that_prefixs_keys_only():
    mine, other = new_prefix(), new_prefix()
    async with coredis.Redis.from_url(REDIS_URL) as client:
        for i in range(600):  # more than one batch of deletes
            await client.set(f"{{{mine}:s}}:{i}", "v")
        await client.set(f"{{{other}:s}}:0", "v")
        try:
            assert await delete_prefix(mine) == 600
            assert await client.exists([f"{{{mine}:s}}:0"]) == 0
            assert await client.exists([f"{{{other}:s}}:0"]) == 1
        finally:
            await delete_prefix(other)


def test_free_port_with_also_gives_two_free_ports():
    port = free_port(also=10_000)
    for candidate in (port, port + 10_000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", candidate))


async def test_a_private_server_answers_until_it_is_stopped(tmp_path):
    server = RedisServer(tmp_path / "r")
    async with server.running():
        assert await server.ping()
        async with coredis.Redis.from_url(server.url) as client:
            await client.set("k", "v")
    assert not await server.ping()
    # Acknowledged writes are in the append-only file: a restart on the directory has them.
    again = RedisServer(tmp_path / "r", server.port)
    async with again.running(), coredis.Redis.from_url(again.url) as client:
        assert await client.get("k") == b"v"
