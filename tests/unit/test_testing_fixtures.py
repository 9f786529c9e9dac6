"""The ``router`` pytest plugin's fixtures, as a plugin's own test suite gets them."""

from __future__ import annotations

import coredis
import pytest
import trio

from router.testing.redis import REDIS_URL

INNER = """
import coredis
import httpx

from router.testing.redis import REDIS_URL


def test_router_registry_has_the_built_in_plugins(router_registry):
    assert {"conscent", "segmento", "moloco", "endu"} <= set(router_registry.codecs)
    assert "file" in router_registry.sinks


async def test_fake_upstream_records_what_it_is_sent(fake_upstream):
    async with httpx.AsyncClient() as client:
        await client.post(fake_upstream.url + "/in", content=b"[1]")
    (request,) = fake_upstream.accepted
    assert (request.path, request.body) == ("/in", b"[1]")


async def test_redis_prefix_is_a_fresh_prefix(redis_prefix):
    with open("prefix.txt", "w") as f:
        f.write(redis_prefix)
    async with coredis.Redis.from_url(REDIS_URL) as client:
        await client.set("{" + redis_prefix + ":x}:k", "v")
        assert await client.exists(["{" + redis_prefix + ":x}:k"]) == 1
"""


async def exists(key: str) -> int:
    async with coredis.Redis.from_url(REDIS_URL) as client:
        return await client.exists([key])


@pytest.mark.redis
def test_the_fixtures_work_in_a_suite_of_their_own_and_clean_up_redis(pytester):
    """A sync test: the inner suite runs its own Trio loops."""
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    prefix = (pytester.path / "prefix.txt").read_text()
    assert prefix
    assert trio.run(exists, f"{{{prefix}:x}}:k") == 0
