"""workergroup: a group's answers from every worker's private socket (real unix-socket servers)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import orjson
import trio
import trio.lowlevel
from hypercorn.utils import wrap_app
from prometheus_client.parser import text_string_to_metric_families
from quart import Response, request
from quart_trio import QuartTrio

from router.config import ServerConfig
from router.http import hypercorn_config, serve_http
from router.listener import listen
from router.metrics import Metrics
from router.workergroup import (
    UNIX_PATH_MAX,
    GroupMetrics,
    WorkerGroup,
    merge_metrics,
    merged_lines,
    private_socket_paths,
)

TOKEN = "peer-token-0b7e"


def samples(text: str | bytes) -> dict[tuple[str, frozenset], float]:
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def worker_metrics(index: int, received: int, queued: int) -> Metrics:
    metrics = Metrics()
    metrics.worker_info(index)
    metrics.events_received.labels("in").inc(received)
    metrics.request_seconds.labels("in", "r").observe(0.003 * (index + 1))
    metrics.watch_sink("out", lambda: {"pending_events": queued, "paused_for": 2.0 * index})
    return metrics


# -- merging metrics -------------------------------------------------------------------


def test_counters_histograms_and_gauges_add_up_and_worker_info_stays_per_worker():
    texts = [worker_metrics(0, 3, 5).render().decode(), worker_metrics(1, 4, 7).render().decode()]
    found = samples(merge_metrics(texts))
    assert value(found, "router_events_received_total", source="in") == 7
    assert value(found, "router_request_duration_seconds_count", source="in", route="r") == 2
    # 0.003 s is in the 0.005 bucket, 0.006 s is not
    assert (
        value(found, "router_request_duration_seconds_bucket", source="in", route="r", le="0.005")
        == 1
    )
    assert (
        value(found, "router_request_duration_seconds_bucket", source="in", route="r", le="+Inf")
        == 2
    )
    assert value(found, "router_sink_events_queued", sink="out") == 12
    assert value(found, "router_sink_paused_seconds", sink="out") == 2.0  # the longest, not a sum
    assert value(found, "router_worker_info", worker="0") == 1
    assert value(found, "router_worker_info", worker="1") == 1
    assert value(found, "router_workers_up") == 2
    assert value(found, "router_worker_scrape_failed", worker="0") == 0
    assert not any(name.endswith("_created") for name, _ in found)


def test_a_worker_that_did_not_answer_is_counted_out_not_fatal():
    found = samples(merge_metrics([worker_metrics(0, 3, 0).render().decode(), None]))
    assert value(found, "router_events_received_total", source="in") == 3
    assert value(found, "router_workers_up") == 1
    assert value(found, "router_worker_scrape_failed", worker="1") == 1
    assert value(found, "router_worker_scrape_failed", worker="0") == 0
    assert ("router_worker_info", frozenset({("worker", "1")})) not in found


def test_a_shared_redis_streams_length_is_reported_once_not_per_worker():
    texts = [worker_metrics(0, 1, 40).render().decode(), worker_metrics(1, 1, 40).render().decode()]
    found = samples(merge_metrics(texts, shared_sinks=frozenset({"out"})))
    assert value(found, "router_sink_events_queued", sink="out") == 40
    assert value(found, "router_events_received_total", source="in") == 2


def test_a_label_set_only_one_worker_has_stays_in_its_family():
    second = worker_metrics(1, 4, 0)
    second.events_received.labels("other").inc(9)
    text = merge_metrics([worker_metrics(0, 3, 0).render().decode(), second.render().decode()])
    (family,) = [
        f
        for f in text_string_to_metric_families(text.decode())
        if f.name == "router_events_received"
    ]
    assert family.type == "counter"
    assert {s.labels["source"]: s.value for s in family.samples if s.name.endswith("_total")} == {
        "in": 7,
        "other": 9,
    }


def test_the_merged_text_is_valid_exposition_with_help_and_type():
    text = merge_metrics([worker_metrics(0, 1, 0).render().decode()]).decode()
    assert "# TYPE router_events_received_total counter" in text
    assert "# HELP router_workers_up Workers that answered this scrape" in text


# -- private socket paths --------------------------------------------------------------


def test_private_sockets_sit_in_the_worker_directories(tmp_path):
    paths, made = private_socket_paths(tmp_path, 2)
    assert paths == [tmp_path / "worker-0" / "admin.sock", tmp_path / "worker-1" / "admin.sock"]
    assert made is None


async def test_a_data_dir_too_deep_for_a_unix_socket_gets_short_paths_that_work(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    assert len(os.fsencode(deep / "worker-0" / "admin.sock")) > UNIX_PATH_MAX
    paths, made = private_socket_paths(deep, 3)
    try:
        assert made is not None and made.is_dir() and (made.stat().st_mode & 0o077) == 0
        assert all(len(os.fsencode(p)) <= UNIX_PATH_MAX for p in paths)
        assert len(set(paths)) == 3
        sockets = listen(f"unix:{paths[2]}")  # binds: the path is short enough
        (sock,) = sockets.insecure_sockets
        with trio.socket.socket(trio.socket.AF_UNIX) as client:
            await client.connect(str(paths[2]))
        sock.close()
    finally:
        if made is not None:
            for p in made.iterdir():
                p.unlink()
            made.rmdir()


# -- real peers on unix sockets --------------------------------------------------------


def snapshot(index: int, accepted: float, status: str = "ready") -> dict:
    return {
        "version": "x",
        "time": 0.0,
        "uptime_seconds": 10.0 + index,
        "workers": [index],
        "status": status,
        "ready": status == "ready",
        "sources": {"in": {"plugin": "p", "events_accepted": accepted, "p99_seconds": None}},
        "sinks": {
            name: {"plugin": "p", "delivered": 1.0, "pending": 30, "pending_bytes": 300}
            for name in ("disk", "stream")
        },
        "routes": [],
        "orphaned": {},
        "storage_errors": [],
        "reloads": [],
    }


def peer_app(
    index: int, *, reload_result: str = "applied", lines: int = 3, streaming: set | None = None
) -> QuartTrio:
    """A worker's private admin socket as far as the group asks it.

    ``streaming`` holds the workers whose tap stream is open now.
    """
    streaming = set() if streaming is None else streaming
    app = QuartTrio(f"peer{index}")
    metrics = worker_metrics(index, 10 * (index + 1), 0)

    @app.before_request
    async def token() -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response("no", status=401)
        return None

    @app.get("/metrics")
    async def scrape() -> Response:
        return Response(metrics.render(), content_type="text/plain; version=0.0.4")

    @app.get("/admin/status")
    async def status() -> Response:
        return Response(
            orjson.dumps(snapshot(index, 5.0 * (index + 1))), content_type="application/json"
        )

    @app.post("/admin/reload")
    async def reload() -> Response:
        body = {"result": reload_result, "problems": ["bad"] if reload_result == "rejected" else []}
        code = 422 if reload_result == "rejected" else 200
        return Response(orjson.dumps(body), status=code, content_type="application/json")

    @app.get("/admin/reloads")
    async def reloads() -> Response:
        return Response(orjson.dumps([{"result": reload_result}]), content_type="application/json")

    @app.get("/admin/tap")
    async def tap() -> Response:
        if request.args.get("source") == "nope":
            return Response(b'{"error":"Bad Request"}', status=400, content_type="application/json")

        source = request.args.get("source")

        async def body():
            streaming.add(index)
            try:
                for i in range(lines):
                    line = orjson.dumps({"worker": index, "n": i, "q": source})
                    # A line in two chunks: the merge must not split it, nor glue two.
                    yield line[:5]
                    await trio.sleep(0.001)
                    yield line[5:] + b"\n"
            finally:
                streaming.discard(index)

        return Response(body(), content_type="application/x-ndjson")

    return app


async def serve_unix(nursery: trio.Nursery, app: QuartTrio, path: Path) -> None:
    hc = hypercorn_config(ServerConfig())
    hc.accesslog = None
    await nursery.start(
        lambda task_status: serve_http(
            wrap_app(app, 1 << 20, None),
            hc,
            max_connections=8,
            sockets=listen(f"unix:{path}"),
            task_status=task_status,
        )
    )


def group_of(tmp_path: Path, n: int, **options) -> WorkerGroup:
    return WorkerGroup([tmp_path / f"{i}.sock" for i in range(n)], lambda: TOKEN, **options)


async def test_the_group_answers_with_every_peers_numbers(tmp_path, nursery):
    for i in range(2):
        await serve_unix(nursery, peer_app(i), tmp_path / f"{i}.sock")
    group = group_of(tmp_path, 2, shared_sinks=lambda: frozenset({"stream"}))
    found = samples(await group.metrics())
    assert value(found, "router_events_received_total", source="in") == 30
    status = orjson.loads(await (await group.answer("GET", "/admin/status")).get_data())
    assert status["workers"] == [0, 1]
    assert status["sources"]["in"]["events_accepted"] == 15
    assert status["sinks"]["disk"]["pending"] == 60  # each worker's own spool
    assert status["sinks"]["stream"]["pending"] == 30  # one stream, seen by both
    assert status["sinks"]["stream"]["pending_bytes"] == 300
    assert status["sinks"]["stream"]["delivered"] == 2
    assert "unreachable" not in status
    reloads = orjson.loads(await (await group.answer("GET", "/admin/reloads")).get_data())
    assert reloads == {"workers": {"0": [{"result": "applied"}], "1": [{"result": "applied"}]}}
    assert await group.answer("GET", "/admin/config") is None  # one worker's is everyone's


async def test_one_rejected_reload_makes_the_groups_422(tmp_path, nursery):
    await serve_unix(nursery, peer_app(0), tmp_path / "0.sock")
    await serve_unix(nursery, peer_app(1, reload_result="rejected"), tmp_path / "1.sock")
    response = await group_of(tmp_path, 2).answer("POST", "/admin/reload")
    assert response.status_code == 422
    body = orjson.loads(await response.get_data())
    assert body["result"] == "rejected"
    assert body["workers"]["0"]["result"] == "applied"
    assert body["workers"]["1"]["problems"] == ["bad"]


async def test_a_silent_or_missing_peer_is_named_not_waited_for(tmp_path, nursery):
    await serve_unix(nursery, peer_app(0), tmp_path / "0.sock")
    silent = listen(f"unix:{tmp_path / '1.sock'}")  # accepts into the backlog, never answers
    group = group_of(tmp_path, 3, scrape_timeout=0.5, reload_timeout=0.5)  # 2.sock does not exist
    found = samples(await group.metrics())
    assert value(found, "router_workers_up") == 1
    assert value(found, "router_worker_scrape_failed", worker="1") == 1
    assert value(found, "router_worker_scrape_failed", worker="2") == 1
    assert value(found, "router_events_received_total", source="in") == 10
    status = orjson.loads(await (await group.answer("GET", "/admin/status")).get_data())
    assert status["workers"] == [0]
    assert status["unreachable"]["1"] == "did not answer within 0.5s"
    assert status["unreachable"]["2"].startswith("ConnectError")
    reload = await group.answer("POST", "/admin/reload")
    assert reload.status_code == 502
    assert orjson.loads(await reload.get_data())["workers"]["2"]["result"] == "unreachable"
    silent.insecure_sockets[0].close()


async def test_no_peer_answering_is_a_503(tmp_path):
    response = await group_of(tmp_path, 2).answer("GET", "/admin/status")
    assert response.status_code == 503
    assert orjson.loads(await response.get_data())["message"].startswith("worker 0: ConnectError")


# -- streams ---------------------------------------------------------------------------


async def lines_of(path: Path, url: str) -> tuple[httpx.AsyncClient, httpx.Response]:
    client = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(path)), base_url="http://w"
    )
    return client, await client.send(
        client.build_request("GET", url, headers={"Authorization": f"Bearer {TOKEN}"}), stream=True
    )


async def test_merged_lines_keep_every_line_whole(tmp_path, nursery):
    for i in range(2):
        await serve_unix(nursery, peer_app(i, lines=20), tmp_path / f"{i}.sock")
    opened = [await lines_of(tmp_path / f"{i}.sock", "/admin/tap") for i in range(2)]
    merged = await nursery.start(merged_lines, [response.aiter_lines() for _, response in opened])
    got = [orjson.loads(line) async for line in merged]
    for client, response in opened:
        await response.aclose()
        await client.aclose()
    assert sorted((e["worker"], e["n"]) for e in got) == [(w, n) for w in (0, 1) for n in range(20)]
    for w in (0, 1):  # each worker's lines in its own order
        assert [e["n"] for e in got if e["worker"] == w] == list(range(20))


async def front(nursery: trio.Nursery, group: WorkerGroup) -> str:
    """The shared admin socket's role: a loopback app that asks the group."""
    app = QuartTrio("front")

    @app.before_request
    async def for_the_group() -> Response | None:
        return await group.answer(request.method, request.path, request.query_string)

    hc = hypercorn_config(ServerConfig())
    hc.bind = ["127.0.0.1:0"]
    hc.accesslog = None
    (url,) = await nursery.start(
        lambda task_status: serve_http(
            wrap_app(app, 1 << 20, None), hc, max_connections=8, task_status=task_status
        )
    )
    return url


async def test_a_streamed_path_merges_every_workers_stream_over_http(tmp_path, nursery):
    for i in range(2):
        await serve_unix(nursery, peer_app(i, lines=5), tmp_path / f"{i}.sock")
    url = await front(nursery, group_of(tmp_path, 2))
    async with httpx.AsyncClient(base_url=url) as client:
        async with client.stream("GET", "/admin/tap", params={"source": "in"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/x-ndjson"
            got = [orjson.loads(line) async for line in r.aiter_lines()]
        assert sorted((e["worker"], e["n"]) for e in got) == [
            (w, n) for w in (0, 1) for n in range(5)
        ]
        assert {e["q"] for e in got} == {"in"}, "the query string reaches every worker"
        refused = await client.get("/admin/tap", params={"source": "nope"})
        assert refused.status_code == 400 and refused.json() == {"error": "Bad Request"}


async def test_a_client_leaving_a_stream_early_closes_the_workers_streams(tmp_path, nursery):
    streaming: set[int] = set()
    for i in range(2):
        app = peer_app(i, lines=1_000_000, streaming=streaming)
        await serve_unix(nursery, app, tmp_path / f"{i}.sock")
    url = await front(nursery, group_of(tmp_path, 2))
    async with httpx.AsyncClient(base_url=url) as client:
        async with client.stream("GET", "/admin/tap") as r:
            first = await r.aiter_lines().__anext__()
            assert orjson.loads(first)["n"] == 0
            with trio.fail_after(10):
                while streaming != {0, 1}:  # noqa: ASYNC110
                    await trio.sleep(0.01)
        with trio.fail_after(10):
            while streaming:  # noqa: ASYNC110
                await trio.sleep(0.01)
        # The front still answers: nothing of the stream holds it up.
        found = samples((await client.get("/metrics")).content)
        assert value(found, "router_workers_up") == 2


# -- the ingest port's /metrics --------------------------------------------------------


async def test_the_ingest_ports_metrics_are_the_groups_and_the_rest_passes_through(
    tmp_path, nursery
):
    for i in range(2):
        await serve_unix(nursery, peer_app(i), tmp_path / f"{i}.sock")
    ingest = QuartTrio("ingest")

    @ingest.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @ingest.get("/metrics")
    async def local() -> Response:
        return Response(b"one worker's", content_type="text/plain")

    hc = hypercorn_config(ServerConfig())
    hc.bind = ["127.0.0.1:0"]
    hc.accesslog = None
    app = wrap_app(GroupMetrics(ingest, group_of(tmp_path, 2)), 1 << 20, None)
    (url,) = await nursery.start(
        lambda task_status: serve_http(app, hc, max_connections=8, task_status=task_status)
    )
    async with httpx.AsyncClient(base_url=url) as client:
        found = samples((await client.get("/metrics")).text)
        assert value(found, "router_events_received_total", source="in") == 30
        assert (await client.get("/healthz")).json() == {"status": "ok"}
