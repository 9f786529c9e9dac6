"""FakeUpstream over real loopback sockets, driven by httpx like the daemon's sinks."""

from __future__ import annotations

import functools
import signal
import subprocess
import sys

import httpx
import orjson
import pytest
import trio

from router.testing.upstream import (
    Close,
    Delay,
    FakeUpstream,
    Hang,
    Hold,
    RecordedRequest,
    Reply,
    Reset,
    count_json_array,
)

#: A bound on every wait in these tests, so a bug fails instead of hanging.
TIMEOUT = 10


#: A short read timeout, but time enough to connect on a loaded machine
#: (a 0.2 s connect timeout once fired before the read one could).
READ_ONLY_TIMEOUT = httpx.Timeout(10, read=0.2)


async def statuses(client: httpx.AsyncClient, url: str, n: int) -> list[int]:
    return [(await client.post(url, content=b"x")).status_code for _ in range(n)]


# --- replies ---------------------------------------------------------------------


async def test_default_reply_and_recording():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        assert upstream.url == f"http://127.0.0.1:{upstream.port}"
        response = await client.post(
            upstream.url + "/v1/events?key=abc&x=1",
            json=[{"id": 1}, {"id": 2}],
            headers={"X-Api-Key": "secret"},
        )
        assert response.status_code == 200
        assert response.content == b""

    [request] = upstream.requests
    assert isinstance(request, RecordedRequest)
    assert request.method == "POST"
    assert request.path == "/v1/events"
    assert request.query == "key=abc&x=1"
    assert request.headers["x-api-key"] == "secret"
    assert request.headers["content-type"] == "application/json"
    assert type(request.body) is bytes
    assert request.json() == [{"id": 1}, {"id": 2}]
    assert request.action == Reply(200)
    assert request.status == 200
    assert upstream.accepted == [request]
    assert upstream.requests_total == 1
    assert upstream.responses_by_status == {200: 1}


async def test_default_reply_is_settable_with_json_body_and_headers():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        upstream.default = Reply(202, {"accepted": 2}, headers={"X-Request-Id": "r1"})
        response = await client.post(upstream.url + "/", content=b"[]")
        assert response.status_code == 202
        assert response.json() == {"accepted": 2}
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-request-id"] == "r1"

        upstream.default = Reply(503, "down for maintenance")
        response = await client.post(upstream.url + "/", content=b"[]")
        assert response.status_code == 503
        assert response.text == "down for maintenance"


async def test_head_reply_has_no_body():
    upstream_running = FakeUpstream.running(default=Reply(200, b"hello"))
    async with upstream_running as upstream, httpx.AsyncClient() as client:
        response = await client.head(upstream.url + "/")
        assert response.headers["content-length"] == "5"
        assert response.content == b""
        # The connection is still usable after a HEAD.
        assert (await client.get(upstream.url + "/")).content == b"hello"


def test_reply_rejects_impossible_responses():
    with pytest.raises(ValueError):
        Reply(101)
    with pytest.raises(ValueError):
        Reply(204, b"no body allowed")
    assert Reply(204).status == 204


async def test_script_is_consumed_in_order_then_falls_back_to_default():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        upstream.script(Reply(500), Reply(500))
        upstream.script(Reply(429, headers={"retry-after": "2"}))
        assert upstream.script_remaining == 3
        responses = [await client.post(upstream.url + "/", content=b"x") for _ in range(5)]
        assert [r.status_code for r in responses] == [500, 500, 429, 200, 200]
        assert responses[2].headers["retry-after"] == "2"
        assert upstream.script_remaining == 0

        upstream.script(Reply(500), Reply(500))
        upstream.clear_script()
        assert await statuses(client, upstream.url, 1) == [200]

    assert [r.status for r in upstream.requests] == [500, 500, 429, 200, 200, 200]
    assert len(upstream.accepted) == 3
    assert upstream.responses_by_status == {500: 2, 429: 1, 200: 3}


def test_script_rejects_what_is_not_an_action():
    upstream = FakeUpstream()
    with pytest.raises(TypeError):
        upstream.script(Reply(500), 500)  # type: ignore[arg-type]
    assert upstream.script_remaining == 0


async def test_handler_decides_per_request_after_the_script():
    def reject_bad(request: RecordedRequest) -> Reply | None:
        return Reply(400, {"error": "bad event"}) if b"BAD" in request.body else None

    async with FakeUpstream.running(handler=reject_bad) as upstream, httpx.AsyncClient() as client:
        good = await client.post(upstream.url + "/", content=b'{"e": "ok"}')
        bad = await client.post(upstream.url + "/", content=b'{"e": "BAD"}')
        upstream.script(Reply(503))
        scripted = await client.post(upstream.url + "/", content=b'{"e": "BAD"}')
        assert (good.status_code, bad.status_code, scripted.status_code) == (200, 400, 503)
        assert bad.json() == {"error": "bad event"}

    assert [r.json() for r in upstream.accepted] == [{"e": "ok"}]


async def test_handler_exception_propagates():
    def broken(request: RecordedRequest) -> None:
        raise ZeroDivisionError

    with pytest.RaisesGroup(ZeroDivisionError, flatten_subgroups=True):
        async with FakeUpstream.running(handler=broken) as upstream, httpx.AsyncClient() as client:
            with trio.fail_after(TIMEOUT):
                await client.post(upstream.url + "/", content=b"x")


async def test_body_exception_is_not_wrapped_in_a_group():
    with pytest.raises(KeyError):
        async with FakeUpstream.running():
            raise KeyError("from the test")


# --- slow and broken ---------------------------------------------------------------


async def test_delay_answers_late():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        upstream.script(Delay(0.05, then=Reply(201)), Delay(0.05))
        assert await statuses(client, upstream.url, 2) == [201, 200]
        assert upstream.requests[0].action == Delay(0.05, then=Reply(201))
        assert [r.status for r in upstream.requests] == [201, 200]


async def test_delay_longer_than_client_timeout_times_out():
    async with FakeUpstream.running(default=Delay(60)) as upstream:
        async with httpx.AsyncClient(timeout=READ_ONLY_TIMEOUT) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(upstream.url + "/", content=b"x")
        [request] = upstream.requests
        assert request.status is None  # still waiting to answer
        assert upstream.accepted == []


async def test_hold_keeps_the_request_in_flight_until_released():
    release = trio.Event()
    async with FakeUpstream.running(default=Hold(release)) as upstream:
        responses: list[httpx.Response] = []

        async def post(client: httpx.AsyncClient) -> None:
            responses.append(await client.post(upstream.url + "/", content=b"x"))

        with trio.fail_after(TIMEOUT):
            async with httpx.AsyncClient() as client, trio.open_nursery() as nursery:
                nursery.start_soon(post, client)
                await upstream.wait_for(1)
                assert responses == []
                assert upstream.requests[0].status is None
                release.set()
        assert [r.status_code for r in responses] == [200]
        assert upstream.requests[0].status == 200


async def test_hang_never_answers():
    async with FakeUpstream.running() as upstream:
        upstream.script(Hang())
        async with httpx.AsyncClient(timeout=READ_ONLY_TIMEOUT) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(upstream.url + "/", content=b"x")
            # The next request gets a new connection and the default reply.
            assert await statuses(client, upstream.url, 1) == [200]
        assert isinstance(upstream.requests[0].action, Hang)
        assert upstream.requests[0].status is None
        assert upstream.statistics().faults == {"hang": 1}


async def test_reset_is_a_read_error():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        upstream.script(Reset())
        with pytest.raises(httpx.ReadError, match="reset"):
            await client.post(upstream.url + "/", content=b"event")
        assert await statuses(client, upstream.url, 1) == [200]
    assert upstream.requests[0].body == b"event"
    assert upstream.requests[0].status is None
    assert upstream.statistics().faults == {"reset": 1}


async def test_close_without_answer_is_a_protocol_error():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        upstream.script(Close())
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(upstream.url + "/", content=b"x")
        assert await statuses(client, upstream.url, 1) == [200]
    assert [r.accepted for r in upstream.requests] == [False, True]
    assert upstream.statistics().faults == {"close": 1}


# --- refusing connections ------------------------------------------------------------


async def test_refuse_then_accept_on_the_same_port():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        url, port = upstream.url, upstream.port
        assert await statuses(client, url, 1) == [200]

        upstream.refuse()
        assert not upstream.listening
        # The pooled keep-alive connection was closed too: the client reconnects, and fails.
        with pytest.raises(httpx.ConnectError):
            await client.post(url + "/", content=b"x")
        with pytest.raises(httpx.ConnectError):
            await client.post(url + "/", content=b"x")

        await upstream.accept()
        assert upstream.listening
        assert upstream.port == port
        assert await statuses(client, url, 1) == [200]

    assert [r.connection for r in upstream.requests] == [0, 1]
    assert upstream.requests_total == 2


async def test_refuse_closes_requests_in_progress():
    async with FakeUpstream.running(default=Hang()) as upstream:
        errors: list[Exception] = []

        async def post() -> None:
            async with httpx.AsyncClient() as client:
                try:
                    await client.post(upstream.url + "/", content=b"x")
                except httpx.RemoteProtocolError as exc:
                    errors.append(exc)

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(post)
                await upstream.wait_for(1)
                upstream.refuse()
        assert len(errors) == 1
        assert upstream.statistics().connections_open == 0


async def test_accept_and_refuse_are_idempotent():
    async with FakeUpstream.running() as upstream:
        await upstream.accept()
        upstream.refuse()
        upstream.refuse()
        await upstream.accept()
        async with httpx.AsyncClient() as client:
            assert await statuses(client, upstream.url, 1) == [200]


async def test_shutdown_closes_the_port():
    async with FakeUpstream.running() as upstream:
        url = upstream.url
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url)


# --- waiting, keep-alive, concurrency ----------------------------------------------


async def test_wait_for_a_count_or_a_predicate():
    async with FakeUpstream.running() as upstream:
        upstream.script(Reply(500))

        async def deliver() -> None:
            async with httpx.AsyncClient() as client:
                await statuses(client, upstream.url, 3)

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(deliver)
                await upstream.wait_for(lambda up: len(up.accepted) == 2)
                assert upstream.requests_total == 3
                await upstream.wait_for(3)  # already true: returns at once
                await upstream.wait_for(lambda up: True)


async def test_keep_alive_reuses_one_connection():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        assert await statuses(client, upstream.url, 3) == [200, 200, 200]
        stats = upstream.statistics()
    assert [r.connection for r in upstream.requests] == [0, 0, 0]
    assert stats.connections_total == 1
    assert stats.connections_open == 1


async def test_many_concurrent_connections_are_all_served_and_recorded():
    n = 50
    release = trio.Event()
    async with FakeUpstream.running(default=Hold(release)) as upstream:
        results: list[int] = []

        async def post(client: httpx.AsyncClient, i: int) -> None:
            response = await client.post(upstream.url + f"/e/{i}", json={"i": i})
            results.append(response.status_code)

        limits = httpx.Limits(max_connections=n)
        with trio.fail_after(TIMEOUT):
            async with httpx.AsyncClient(limits=limits) as client, trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(post, client, i)
                # All n are in flight at once, so each has its own connection.
                await upstream.wait_for(n)
                assert upstream.statistics().connections_open == n
                release.set()
        assert results == [200] * n
        assert sorted(r.json()["i"] for r in upstream.accepted) == list(range(n))
        assert len({r.connection for r in upstream.requests}) == n


# --- request bodies --------------------------------------------------------------------


async def test_chunked_request_body():
    async def chunks():
        for i in range(5):
            yield b"chunk%d;" % i

    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        response = await client.post(upstream.url + "/", content=chunks())
        assert response.status_code == 200
    [request] = upstream.requests
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == b"chunk0;chunk1;chunk2;chunk3;chunk4;"


async def test_large_body_and_body_limit():
    body = bytes(range(256)) * (5 * 4096)  # 5 MiB
    async with FakeUpstream.running(max_body=len(body)) as upstream:
        async with httpx.AsyncClient() as client:
            assert (await client.post(upstream.url + "/", content=body)).status_code == 200
            too_big = await client.post(upstream.url + "/", content=body + b"!")
            assert too_big.status_code == 413
        assert upstream.requests[0].body == body
        assert upstream.requests_total == 1
        assert upstream.statistics().protocol_errors == 1


async def test_malformed_request_gets_400():
    async with FakeUpstream.running() as upstream:
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_tcp_stream("127.0.0.1", upstream.port)
            async with stream:
                await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
                answer = b""
                while chunk := await stream.receive_some():
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert upstream.requests == []
        assert upstream.statistics().protocol_errors == 1


# --- benchmark mode ---------------------------------------------------------------------


def test_count_json_array():
    assert count_json_array(b"[1, 2, 3]") == 3
    assert count_json_array(b'{"event": 1}') == 1
    assert count_json_array(b"not json") == 0


async def test_record_false_keeps_counters_and_counts_accepted_events():
    async with FakeUpstream.running(record=False, count_events=True) as upstream:
        async with httpx.AsyncClient() as client:
            upstream.script(Reply(500))
            for _ in range(3):
                await client.post(upstream.url + "/", json=[{"e": 1}, {"e": 2}])
        stats = upstream.statistics()
    assert upstream.requests == []
    assert stats.requests_total == 3
    assert stats.responses_by_status == {500: 1, 200: 2}
    assert stats.events_accepted == 4  # the 500-answered batch is not counted
    assert stats.bytes_received == 3 * len(b'[{"e":1},{"e":2}]')


async def test_record_to_file(tmp_path):
    path = tmp_path / "requests.ndjson"
    async with FakeUpstream.running(record=False, record_to=path) as upstream:
        upstream.script(Reply(429), Reset())
        async with httpx.AsyncClient() as client:
            await client.post(upstream.url + "/p?q=1", content=b"a")
            with pytest.raises(httpx.ReadError):
                await client.post(upstream.url + "/p?q=1", content=b"b")
            await client.post(upstream.url + "/p?q=1", content=b"c")
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [(x["body"], x["status"], x["action"]) for x in lines] == [
        ("a", 429, "reply"),
        ("b", None, "reset"),
        ("c", 200, "reply"),
    ]
    assert lines[0]["path"] == "/p"
    assert lines[0]["query"] == "q=1"
    assert lines[0]["headers"]["content-length"] == "1"


# --- as its own process -------------------------------------------------------------------


async def readline(stream: trio.abc.ReceiveStream, buffer: bytearray) -> bytes:
    while b"\n" not in buffer:
        chunk = await stream.receive_some()
        if not chunk:
            raise EOFError(bytes(buffer))
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


async def test_cli_serves_records_and_summarizes_on_sigterm(tmp_path):
    record = tmp_path / "record.ndjson"
    command = [
        sys.executable,
        "-m",
        "router.testing.upstream",
        "--port",
        "0",
        "--status",
        "202",
        "--record-to",
        str(record),
        "--count-events",
    ]
    run = functools.partial(trio.run_process, command, stdout=subprocess.PIPE, check=False)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(run)
            assert process.stdout is not None
            buffer = bytearray()
            ready = await readline(process.stdout, buffer)
            assert ready.startswith(b"READY http://127.0.0.1:")
            url = ready.split()[1].decode()

            async with httpx.AsyncClient() as client:
                for batch in ([1, 2], [3]):
                    response = await client.post(url + "/events", json=batch)
                    assert response.status_code == 202

            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            summary = orjson.loads(await readline(process.stdout, buffer))

    assert summary["requests"] == 2
    assert summary["statuses"] == {"202": 2}
    assert summary["events"] == 3
    assert summary["bytes"] == len(b"[1,2][3]")
    lines = [orjson.loads(line) for line in record.read_bytes().splitlines()]
    assert [(x["method"], x["path"], x["body"], x["status"]) for x in lines] == [
        ("POST", "/events", "[1,2]", 202),
        ("POST", "/events", "[3]", 202),
    ]


async def test_counts_events_in_vendor_envelopes_and_serves_its_statistics():
    import httpx

    from router.testing.upstream import FakeUpstream

    async with (
        FakeUpstream.running(count_events=True) as up,
        httpx.AsyncClient(base_url=up.url) as client,
    ):
        await client.post("/a", json={"messageBody": [1, 2, 3]})
        await client.post("/b", json={"data": [1, 2]})
        await client.post("/c", json=[1, 2, 3, 4])
        await client.post("/d", json={"single": "event"})
        stats = (await client.get("/__stats")).json()
    assert stats["events_accepted"] == 3 + 2 + 4 + 1
    assert stats["requests_total"] == 4  # the statistics request is not counted
    assert stats["responses_by_status"] == {"200": 4}
