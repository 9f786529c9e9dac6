"""SinkRunner on a real spool and a loopback upstream: ack, retry, split a 4xx, dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import trio

from router.delivery import SinkRunner
from router.errors import PluginError
from router.metrics import Metrics
from router.spool import Spool
from router.testing.daemon import build_config
from router.testing.upstream import FakeUpstream, RecordedRequest, Reply
from tests.helpers.third_plugin import THIRD, ThirdSink

FAST_RETRY = {"initial_backoff": 0.01, "max_backoff": 0.05, "max_attempts": 100}


class OpenFails(ThirdSink):
    async def open(self) -> None:
        raise RuntimeError("no credentials")


@asynccontextmanager
async def running(
    tmp_path, url: str, sink_class: type[ThirdSink] = ThirdSink, **options: Any
) -> AsyncIterator[SinkRunner]:
    """A runner for sink ``s`` (the third-party sink at ``url``) over a spool in tmp_path."""
    options = {"batch": {"max_wait": 0.01}, "retry": FAST_RETRY, **options}
    config, _ = build_config(
        {
            "sources": {"in": {"plugin": "conscent", "auth": "none"}},
            "sinks": {"s": {"plugin": "third", "url": url, **options}},
            "routes": [{"from": "in", "to": "s"}],
        },
        plugins=THIRD,
    )
    spool = Spool(tmp_path / "spool.db")
    await spool.open([("s", {"durable": True})])
    try:
        async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
            await nursery.start(spool.run)
            sink = sink_class("s", config.sinks["s"].options, client=client)
            runner = SinkRunner(config.sinks["s"], sink, spool.queues["s"], Metrics())
            await nursery.start(runner.run)
            yield runner
            runner.stop()
            await spool.close()
            nursery.cancel_scope.cancel()
    finally:
        spool.close_db()


def ids(request: RecordedRequest) -> list[str]:
    return [event["id"] for event in request.json()]


def entries(*names: str) -> list[tuple[str, bytes]]:
    return [(name, orjson.dumps({"id": name})) for name in names]


def count(runner: SinkRunner, name: str, **labels: str) -> float:
    return runner.metrics.value(name, sink="s", **labels)


async def settled(runner: SinkRunner) -> None:
    with trio.fail_after(10):
        while runner.queue.pending_events:  # noqa: ASYNC110 - the queue has no event to wait on
            await trio.sleep(0.01)


async def test_a_batch_is_sent_once_and_acknowledged(tmp_path, fake_upstream):
    async with running(tmp_path, fake_upstream.url) as runner:
        await runner.queue.put(entries("a", "b", "c"), 0.0)
        await settled(runner)
        assert count(runner, "router_sink_events_delivered_total") == 3
        assert runner.statistics()["last_error"] is None
    assert [ids(r) for r in fake_upstream.accepted] == [["a", "b", "c"]]


async def test_a_retryable_failure_is_retried_until_delivered(tmp_path, fake_upstream):
    fake_upstream.script(Reply(500), Reply(502))
    async with running(tmp_path, fake_upstream.url) as runner:
        await runner.queue.put(entries("a", "b"), 0.0)
        await settled(runner)
        assert count(runner, "router_sink_events_retried_total") == 4
        assert count(runner, "router_sink_events_delivered_total") == 2
    assert [r.status for r in fake_upstream.requests] == [500, 502, 200]


async def test_a_rejected_batch_is_split_so_only_the_refused_event_is_dead_lettered(tmp_path):
    def refuse_bad(request: RecordedRequest) -> Reply | None:
        return Reply(400, body="bad event") if "bad" in ids(request) else None

    async with (
        FakeUpstream.running(handler=refuse_bad) as upstream,
        running(tmp_path, upstream.url) as runner,
    ):
        await runner.queue.put(entries("a", "bad", "c", "d"), 0.0)
        await settled(runner)
        assert count(runner, "router_sink_events_delivered_total") == 3
        assert count(runner, "router_sink_events_dead_lettered_total", reason="rejected") == 1
    delivered = sorted(i for r in upstream.accepted for i in ids(r))
    assert delivered == ["a", "c", "d"]


async def test_retries_end_in_a_dead_letter_after_max_attempts(tmp_path):
    async with FakeUpstream.running(default=Reply(500)) as upstream:
        retry = {**FAST_RETRY, "max_attempts": 3}
        async with running(tmp_path, upstream.url, retry=retry) as runner:
            await runner.queue.put(entries("a"), 0.0)
            await settled(runner)
            assert count(runner, "router_sink_events_delivered_total") == 0
            assert runner.statistics()["last_error"] is not None
    assert upstream.requests_total == 3


async def test_a_sink_that_cannot_open_is_a_plugin_error_naming_the_method(tmp_path):
    message = "plugin 'third' in hook OpenFails.open: RuntimeError: no credentials"
    refused = pytest.RaisesExc(PluginError, match=f"^{message}$")
    with pytest.RaisesGroup(refused, flatten_subgroups=True):
        async with running(tmp_path, "http://127.0.0.1:1", OpenFails):
            pass
