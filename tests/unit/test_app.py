"""router.app: the front end a daemon serves, and swapping the topology it serves."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import trio

from router.app import serve_topology
from router.testing.daemon import build_config, running_daemon
from router.topology import build_topology

BODY = b'{"events": [{"kind": "view", "user": "u1"}]}'


async def test_a_new_topology_serves_from_the_next_request(tmp_path, sample, sample_config):
    moved = copy.deepcopy(sample_config)
    moved["sources"]["in"]["prefix"] = "/v2"
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        assert (await rd.client.post("/sample/events", content=BODY)).status_code == 202
        daemon = rd.daemon
        config, _ = build_config(moved, plugins=sample)
        second = build_topology(config, daemon.registry, daemon.resources, previous=rd.topology)
        serve_topology(daemon.asgi, daemon, second)
        assert (await rd.client.post("/v2/sample/events", content=BODY)).status_code == 202
        assert (await rd.client.post("/sample/events", content=BODY)).status_code == 404
        # The sink was carried over: both requests' events reach the same queue.
        assert second.sinks["out"] is daemon.topology.sinks["out"]


async def test_a_request_in_flight_finishes_on_the_topology_it_started_on(
    tmp_path, sample, sample_config
):
    moved = copy.deepcopy(sample_config)
    moved["sources"]["in"]["prefix"] = "/v2"
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        daemon = rd.daemon
        url = urlsplit(rd.url)
        stream = await trio.open_tcp_stream(url.hostname, url.port)
        head = (
            b"POST /sample/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(BODY)
        )
        await stream.send_all(head + BODY[:10])
        # Admitted means dispatched: the request has read its (method, path) table.
        with trio.fail_after(10):
            while daemon.asgi.inflight.budget.held == 0:  # noqa: ASYNC110
                await trio.sleep(0.01)
        config, _ = build_config(moved, plugins=sample)
        serve_topology(
            daemon.asgi,
            daemon,
            build_topology(config, daemon.registry, daemon.resources, previous=rd.topology),
        )
        await stream.send_all(BODY[10:])
        answer = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive_some(4096)
        await stream.aclose()
        assert answer.startswith(b"HTTP/1.1 202")
        assert (await rd.client.post("/sample/events", content=BODY)).status_code == 404
