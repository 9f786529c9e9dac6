"""RedisLink on a real Redis: key names, calls, and marking Redis down and up again."""

from __future__ import annotations

import pytest
import trio
from coredis.exceptions import ResponseError

from router.config import RedisConfig
from router.redisconn import RedisLink, RedisUnavailable, _hosts, default_consumer
from router.testing.redis import RedisServer, open_test_link

pytestmark = pytest.mark.redis


def test_keys_carry_the_prefix_and_tag_as_the_cluster_hash_tag():
    link = RedisLink(RedisConfig(url="redis://127.0.0.1:1/0", prefix="p"), consumer="c")
    assert link.key("out", "stream") == "{p:out}:stream"
    assert link.key("rl:sink:out", "requests") == "{p:rl:sink:out}:requests"
    assert link.key("out") == "{p:out}"


@pytest.mark.parametrize(
    ("netloc", "hosts"),
    [
        ("h1:7000,h2:7001", [("h1", 7000), ("h2", 7001)]),
        ("user:pa:ss@h1", [("h1", 6379)]),
        ("[::1]:7000,[fe80::2]", [("::1", 7000), ("fe80::2", 6379)]),
        (":7000", [("localhost", 7000)]),
    ],
)
def test_host_lists_of_sentinel_and_cluster_urls(netloc, hosts):
    assert _hosts(netloc) == hosts


def test_the_default_consumer_is_stable_per_data_dir(tmp_path):
    one = default_consumer(tmp_path / "a")
    assert one == default_consumer(tmp_path / "x" / ".." / "a")
    assert one != default_consumer(tmp_path / "b")


async def test_a_call_returns_what_redis_answers(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        await start()
        key = link.key("t", "n")
        assert await link.call("incr", lambda client: client.incr(key)) == 1
        assert link.up


async def test_a_wrong_command_is_not_mistaken_for_redis_being_down(redis_prefix):
    async with open_test_link(redis_prefix) as (link, start):
        await start()
        key = link.key("t", "s")
        await link.call("set", lambda client: client.set(key, "text"))
        with pytest.raises(ResponseError):
            await link.call("incr", lambda client: client.incr(key))
        assert link.up


async def test_an_unreachable_redis_is_reported_and_calls_fail_at_once(tmp_path):
    server = await RedisServer(tmp_path / "redis").start()
    config = RedisConfig(
        url=server.url, prefix="p", reconnect_initial_backoff=30, reconnect_max_backoff=30,
        connect_timeout=1, command_timeout=1,
    )  # fmt: skip
    link = RedisLink(config, consumer="c")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            await link.call("ping", lambda client: client.ping())
            await server.stop()
            with pytest.raises(RedisUnavailable, match="redis: ping failed: "):
                await link.call("ping", lambda client: client.ping())
            assert not link.up
            # Within the backoff a call does not even try: it fails at once.
            with pytest.raises(RedisUnavailable, match=r"redis is unreachable \(retrying in "):
                await link.call("ping", lambda client: client.ping())
            await link.close()
            nursery.cancel_scope.cancel()
    finally:
        await server.stop()


async def test_a_call_before_the_link_has_connected_is_unavailable():
    link = RedisLink(RedisConfig(url="redis://127.0.0.1:1/0"), consumer="c")
    with pytest.raises(RedisUnavailable, match="not connected yet"):
        await link.call("ping", lambda client: client.ping())


async def test_the_first_call_that_succeeds_after_the_backoff_marks_redis_up(tmp_path):
    server = await RedisServer(tmp_path / "redis").start()
    config = RedisConfig(
        url=server.url, prefix="p", reconnect_initial_backoff=0.05, reconnect_max_backoff=0.05,
        connect_timeout=1, command_timeout=1,
    )  # fmt: skip
    link = RedisLink(config, consumer="c")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            await server.stop()
            with pytest.raises(RedisUnavailable):
                await link.call("ping", lambda client: client.ping())
            await server.start()
            with trio.fail_after(10):
                while True:
                    await link.wait_until_retry()
                    try:
                        await link.call("ping", lambda client: client.ping())
                        break
                    except RedisUnavailable:
                        continue
            assert link.up and link.down_since is None
            await link.close()
            nursery.cancel_scope.cancel()
    finally:
        await server.stop()
