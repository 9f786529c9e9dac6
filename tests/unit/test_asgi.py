"""router.asgi: ASGI scope to IngestRequest, Reply to ASGI messages, the unplanned 500."""

from __future__ import annotations

import orjson
import pytest
from structlog.testing import capture_logs

from router.asgi import (
    INTERNAL_ERROR,
    core_error,
    encode_reply,
    headers_of,
    ingest_request,
    query_of,
    send_reply,
    unhandled,
)
from router.source import Reply
from router.testing.daemon import running_daemon


def scope(path="/collect/event", query=b"", headers=(), client=("10.0.0.7", 5123)) -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": list(headers),
        "client": client,
    }


def test_a_request_carries_lower_case_headers_query_path_params_and_the_client_address():
    request = ingest_request(
        scope(
            query=b"page=2&per_page=&page=9&q=a%20b",
            headers=[(b"X-Request-Id", b"abc"), (b"Authkey", b"k1"), (b"authkey", b"k2")],
        ),
        b"{}",
        {"platform": "ios"},
    )
    assert request.method == "POST" and request.path == "/collect/event"
    assert request.headers == {"x-request-id": "abc", "authkey": "k2"}  # the last one wins
    # As Quart's request.args: the first of a repeated parameter, empty values kept.
    assert request.query == {"page": "2", "per_page": "", "q": "a b"}
    assert request.path_params == {"platform": "ios"}
    assert request.body == b"{}"
    assert request.remote_addr == "10.0.0.7"
    assert request.request_id == "abc"


def test_a_request_without_an_id_or_client_gets_a_fresh_id_and_no_address():
    first = ingest_request(scope(client=None))
    second = ingest_request(scope(client=None))
    assert first.remote_addr == "" and first.query == {} and first.path_params == {}
    assert len(first.request_id) == 32 and first.request_id != second.request_id


def test_headers_already_made_are_used_as_given():
    headers = {"x-request-id": "given"}
    request = ingest_request(scope(headers=[(b"x-request-id", b"ignored")]), headers=headers)
    assert request.headers is headers and request.request_id == "given"


def test_header_bytes_are_latin_1():
    assert headers_of(scope(headers=[(b"X-Name", "Zoë".encode("latin-1"))])) == {"x-name": "Zoë"}


def test_query_of_decodes_percent_escapes_and_plus():
    assert query_of(b"") == {}
    assert query_of(b"a=1+2&b=%C3%A9&c") == {"a": "1 2", "b": "é", "c": ""}


@pytest.mark.parametrize(
    ("reply", "status", "headers", "body"),
    [
        (
            Reply(202, {"ok": True}, {"X-RateLimit-Remaining": 4}),
            202,
            [
                (b"content-length", b"11"),
                (b"content-type", b"application/json"),
                (b"x-ratelimit-remaining", b"4"),
            ],
            b'{"ok":true}',
        ),
        (
            Reply(200, "caf\u00e9", content_type="text/plain"),
            200,
            [(b"content-length", b"5"), (b"content-type", b"text/plain")],
            "café".encode(),
        ),
        # An empty body has no content type.
        (
            Reply(204, b"", {"Location": "/x"}),
            204,
            [(b"content-length", b"0"), (b"location", b"/x")],
            b"",
        ),
    ],
)
def test_encode_reply(reply, status, headers, body):
    assert encode_reply(reply) == (status, headers, body)


async def test_send_reply_sends_the_start_then_the_whole_body():
    sent = []

    async def send(message):
        sent.append(message)

    await send_reply(send, Reply(400, {"error": "x"}, {"Connection": "close"}))
    assert sent == [
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-length", b"13"),
                (b"content-type", b"application/json"),
                (b"connection", b"close"),
            ],
        },
        {"type": "http.response.body", "body": b'{"error":"x"}'},
    ]


def test_core_error_is_the_one_stable_json_shape():
    reply = core_error(405, "Method Not Allowed", "use GET", {"Allow": "GET"})
    assert reply.status == 405 and reply.headers == {"Allow": "GET"}
    assert reply.body == {"error": "Method Not Allowed", "message": "use GET", "status": 405}


def test_an_unhandled_error_off_a_sources_path_is_logged_and_a_core_500():
    request = ingest_request(scope(path="/metrics", headers=[(b"x-request-id", b"r-1")]))
    try:
        raise KeyError("spool")
    except KeyError as exc:
        with capture_logs() as logs:
            reply = unhandled(exc, request)
    assert reply.status == 500
    assert orjson.loads(encode_reply(reply)[2]) == {
        "error": "Internal Server Error",
        "message": "internal error",
        "status": 500,
    }
    [line] = logs
    assert line["event"] == "http.unhandled_error" and line["log_level"] == "error"
    assert line["path"] == "/metrics" and line["request_id"] == "r-1"
    assert line["source"] is None and line["error_type"] == "KeyError"
    assert isinstance(line["exc_info"], KeyError)


async def test_an_unhandled_error_on_a_sources_path_is_a_500_in_the_vendors_shape(
    tmp_path, sample, sample_config
):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        runtime = rd.source("in")
        request = ingest_request(scope(path="/sample/events"))
        with capture_logs() as logs:
            reply = unhandled(RuntimeError("boom"), request, runtime)
    assert reply.status == 500 and reply.body == {"sample_error": INTERNAL_ERROR}
    [line] = [entry for entry in logs if entry["event"] == "http.unhandled_error"]
    assert line["source"] == "in" and line["request_id"] == request.request_id
