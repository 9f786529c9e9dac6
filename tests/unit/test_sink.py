"""Sink: the default send, its answer mapping, encode without a codec, Retry-After parsing."""

from __future__ import annotations

import httpx
import pytest

from router import Event, Sink, SinkRejected, SinkUnavailable
from router.sink import MAX_BODY_KEPT, check_response, parse_rate_limit_reset, parse_retry_after
from router.testing.upstream import FakeUpstream, Hang, Reply
from tests.helpers.third_plugin import NoRequestSink, SingleSink, ThirdSink


def make(cls: type[Sink], client: httpx.AsyncClient, url: str = "http://up") -> Sink:
    return cls("out", {"url": url}, client=client)


async def test_the_default_send_posts_build_request_through_the_client():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        await make(ThirdSink, client, upstream.url).send([b'{"a":1}', b'{"b":2}'])
    (req,) = upstream.accepted
    assert (req.method, req.path, req.body) == ("POST", "/in", b'[{"a":1},{"b":2}]')
    assert req.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(429, headers={"retry-after": "7"}), SinkUnavailable, 7.0),
        (Reply(429, headers={"x-ratelimit-reset": "3"}), SinkUnavailable, 3.0),
        (Reply(503), SinkUnavailable, None),
        (Reply(408), SinkUnavailable, None),
        (Reply(400, body="bad"), SinkRejected, None),
        (Reply(404), SinkRejected, None),
    ],
)
async def test_the_default_send_maps_answers_like_every_sink(reply, error, retry_after):
    async with FakeUpstream.running(default=reply) as upstream, httpx.AsyncClient() as client:
        with pytest.raises(error) as caught:
            await make(ThirdSink, client, upstream.url).send([b"{}"])
    assert caught.value.status == reply.status
    if error is SinkUnavailable:
        assert caught.value.retry_after == retry_after


async def test_the_default_send_maps_a_refused_connection_to_unavailable():
    async with FakeUpstream.running() as upstream:
        url = upstream.url
    async with httpx.AsyncClient() as client:
        with pytest.raises(SinkUnavailable, match="connection failed"):
            await make(ThirdSink, client, url).send([b"{}"])


@pytest.mark.parametrize("size", [0, 2])
async def test_max_batch_events_is_enforced_by_the_base_send(size):
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="takes one event per request, got"):
            await make(SingleSink, client, upstream.url).send([b"{}"] * size)
        await make(ThirdSink, client, upstream.url).send([b"{}"] * 2)
    assert len(upstream.accepted) == 1


async def test_a_sink_with_neither_build_request_nor_send_says_which_to_write():
    async with httpx.AsyncClient() as client:
        with pytest.raises(NotImplementedError, match="NoRequestSink must implement build_request"):
            await make(NoRequestSink, client).send([b"{}"])


def canonical(type_: str) -> Event:
    return Event(id="e1", type=type_, timestamp=1, received_at=1, vendor="x")


def test_encode_without_a_codec_renames_the_type_on_a_copy():
    sink = Sink("out", {"type_map": {"page_view": "seen"}}, client=None)  # type: ignore[arg-type]
    event = canonical("page_view")
    payload = sink.encode(event)
    assert (payload["type"], payload.get("custom")) == ("seen", True)
    assert event.type == "page_view"  # the next sink of the route gets the event as it was
    assert sink.encode(canonical("search"))["type"] == "search"
    renamed_to_canonical = Sink("o", {"type_map": {"search": "purchase"}}, client=None)  # type: ignore[arg-type]
    assert renamed_to_canonical.encode(canonical("search")).get("custom", False) is False


async def test_a_timeout_is_unavailable():
    upstream_running = FakeUpstream.running(default=Hang())
    async with upstream_running as upstream, httpx.AsyncClient(timeout=0.05) as client:
        with pytest.raises(SinkUnavailable, match="timeout"):
            await make(ThirdSink, client, upstream.url).send([b"{}"])


def test_an_error_body_is_kept_only_up_to_max_body_kept():
    response = httpx.Response(400, text="x" * (MAX_BODY_KEPT + 10))
    with pytest.raises(SinkRejected) as caught:
        check_response(response)
    assert caught.value.body == "x" * MAX_BODY_KEPT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("12", 12.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("Thu, 01 Jan 1970 00:16:50 GMT", 10.0),
        ("Thu, 01 Jan 1970 00:16:00 GMT", 0.0),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(value, seconds):
    assert parse_retry_after(value, now=1000.0) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, None), ("x", None), ("30", 30.0), ("1000000060", 60.0), ("999999000", 0.0)],
)
def test_rate_limit_reset_is_a_delta_when_small_and_a_unix_time_when_large(value, seconds):
    # Beyond a year of seconds a value is a Unix time (999999000 is in the past here).
    assert parse_rate_limit_reset(value, now=1_000_000_000.0) == seconds
