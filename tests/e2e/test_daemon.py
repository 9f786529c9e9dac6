"""The daemon over real HTTP on a random loopback port: errors, plugin faults, shutdown, metrics."""

from __future__ import annotations

import io

import orjson
import pytest
import trio

from router.log import REDACTED, configure_logging
from router.testing.daemon import running_daemon
from tests.helpers.ndjson import read_lines, wait_for_lines


async def test_accepts_and_delivers_canonical_events(tmp_path, sample, sample_config):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post(
            "/sample/events",
            json={
                "events": [{"kind": "view", "user": "u1"}, {"kind": "buy", "user": "u2", "n": 2}]
            },
        )
        assert r.status_code == 202
        assert r.json() == {"accepted": 2, "failed": 0}
        out = await wait_for_lines(tmp_path / "out.ndjson", 2)
    assert [(e["type"], e["identity"]["user_id"]) for e in out] == [
        ("page_view", "u1"),
        ("purchase", "u2"),
    ]
    assert out[1]["properties"] == {"n": 2} and out[1]["source"] == "in"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not valid JSON"),
        (b"", 400, "request body is empty"),
        (b"[1, 2]", 400, "body must be an object with an events array"),
        (b'{"events": [{"kind": "view"}]}', 400, "events[0].user: required field"),
        (
            b'{"events": [{"kind": "nope", "user": "u"}, {"kind": "view", "user": 1}]}',
            400,
            "events[0].kind: unallowed value nope; events[1].user: must be of string type",
        ),
    ],
)
async def test_bad_input_gets_the_vendors_error_shape(
    tmp_path, sample, sample_config, body, status, message
):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post("/sample/events", content=body)
        assert r.status_code == status
        assert message in r.json()["sample_error"]
        # A rejected request accepted nothing.
        assert rd.metric("router_events_accepted_total", source="in") == 0


async def test_unknown_path_wrong_method_and_too_large(tmp_path, sample, sample_config):
    sample_config["server"] = {"max_body_bytes": "1KiB"}
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.get("/nowhere")
        assert r.status_code == 404
        assert r.json() == {
            "error": "Not Found",
            "message": "no route for GET /nowhere",
            "status": 404,
        }
        r = await rd.client.put("/sample/events", content=b"{}")
        assert r.status_code == 405
        assert r.headers["allow"] == "POST"
        assert r.json() == {"sample_error": "PUT is not allowed on /sample/events; use POST"}
        r = await rd.client.post("/healthz")
        assert r.status_code == 405 and r.json()["status"] == 405

        big = b'{"events": [' + b",".join([b'{"kind": "view", "user": "u"}'] * 100) + b"]}"
        r = await rd.client.post("/sample/events", content=big)
        assert r.status_code == 413
        assert "larger than 1024 bytes" in r.json()["sample_error"]

        async def chunks():
            for _ in range(10):
                yield big[:200]

        r = await rd.client.post("/sample/events", content=chunks())
        assert r.status_code == 413
        r = await rd.client.post("/sample/events", json={"events": [{"kind": "view", "user": "u"}]})
        assert r.status_code == 202


async def test_a_plugin_raising_on_one_event_does_not_take_the_daemon_down(
    tmp_path, sample, sample_config
):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post(
            "/sample/events",
            json={
                "events": [
                    {"kind": "view", "user": "a"},
                    {"kind": "explode", "user": "b"},
                    {"kind": "buy", "user": "c"},
                ]
            },
        )
        # The codec bug quarantines its event; the others are accepted.
        assert r.status_code == 202
        assert r.json() == {"accepted": 2, "failed": 1}
        total, failed = await rd.daemon.resources.quarantine.list("in")
        assert total == 1
        assert failed[0].event == {"kind": "explode", "user": "b"}
        assert "sample codec could not decode" in failed[0].errors[0]
        out = await wait_for_lines(tmp_path / "out.ndjson", 2)
        assert {e["identity"]["user_id"] for e in out} == {"a", "c"}
        r = await rd.client.get("/healthz")
        assert r.status_code == 200


async def test_a_source_method_raising_gives_a_500_in_the_vendor_shape(
    tmp_path, sample, sample_config, monkeypatch
):
    from tests.helpers import sample_plugin

    def broken_split(self, request, body):
        raise KeyError("oops")

    monkeypatch.setattr(sample_plugin.SampleSource, "split", broken_split)
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post("/sample/events", json={"events": []})
        assert r.status_code == 500
        assert r.json() == {"sample_error": "the sample plugin failed while handling the request"}
        assert "Traceback" not in r.text
        assert (await rd.client.get("/healthz")).status_code == 200


async def test_untranslatable_events_are_dead_lettered_with_a_reason(tmp_path, sample):
    config = {
        "sources": {"in": {"plugin": "sample", "auth": "none"}},
        "sinks": {"up": {"plugin": "sample", "url": "http://127.0.0.1:9"}},
        "routes": [{"from": "in", "to": "up"}],
    }
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        # "odd" decodes to canonical type "odd", which the sample encoder cannot express.
        r = await rd.client.post("/sample/events", json={"events": [{"kind": "odd", "user": "u"}]})
        assert r.status_code == 202
        assert (
            rd.metric("router_sink_events_dead_lettered_total", sink="up", reason="untranslatable")
            == 1
        )
        assert rd.reconcile("up")["balance"] == 0
    from router.deadletters import DeadLetters

    with DeadLetters(tmp_path / "d") as dlq:
        (letter,) = dlq.list("up")
    assert letter.reason == "sample: no sample kind for odd (field type)"


async def test_graceful_shutdown_finishes_requests_in_flight(tmp_path, sample, sample_config):
    """Requests still uploading when shutdown starts complete with 2xx; nothing is cut off."""
    body = orjson.dumps({"events": [{"kind": "view", "user": f"u{i}"} for i in range(20)]})
    results = []
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        started = trio.Semaphore(0)
        release = trio.Event()

        async def slow_upload(i):
            async def chunks():
                yield body[:10]
                started.release()
                await release.wait()
                yield body[10:]

            r = await rd.client.post("/sample/events", content=chunks())
            results.append(r.status_code)

        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(slow_upload, i)
            for _ in range(5):
                await started.acquire()
            rd.stop()
            await trio.sleep(0.2)  # let the listener close while the uploads are in flight
            new = await _try_post(rd.url)
            release.set()
    assert results == [202] * 5
    assert new == "refused"
    out = read_lines(tmp_path / "out.ndjson")
    assert len(out) == 100


async def _try_post(url):
    import httpx

    try:
        async with httpx.AsyncClient() as client:
            await client.post(url + "/sample/events", json={"events": []})
    except httpx.ConnectError:
        return "refused"
    return "served"


async def test_metrics_counters_move(tmp_path, sample, sample_config):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        before = (await rd.client.get("/metrics")).text
        assert 'router_events_accepted_total{source="in"}' not in before
        await rd.client.post("/sample/events", json={"events": [{"kind": "view", "user": "u"}] * 3})
        await rd.client.post("/sample/events", content=b"nope")
        await wait_for_lines(tmp_path / "out.ndjson", 3)
        text = (await rd.client.get("/metrics")).text
    assert 'router_events_accepted_total{source="in"} 3.0' in text
    assert 'router_requests_total{source="in",status="202"} 1.0' in text
    assert 'router_requests_total{source="in",status="400"} 1.0' in text
    assert 'router_sink_events_delivered_total{sink="out"} 3.0' in text
    assert 'router_request_duration_seconds_count{route="ingest",source="in"} 2.0' in text


async def test_readyz_and_plugins(tmp_path, sample, sample_config):
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        plugins = {p["name"]: p for p in (await rd.client.get("/plugins")).json()}
        assert plugins["sample"]["version"] == "1.2.3"
        assert plugins["sample"]["routes"] == ["POST /sample/events"]
        assert plugins["file"]["sinks"] == ["file"]
        assert {"conscent", "segmento", "moloco", "endu"} <= set(plugins)


async def test_secrets_never_reach_the_logs(tmp_path, sample, sample_config):
    stream = io.StringIO()
    configure_logging("debug", "json", secrets={"topsecret-key-1"}, stream=stream, cache=False)
    try:
        sample_config["sources"]["in"]["auth"] = {"keys": ["${KEY}"]}
        async with running_daemon(
            sample_config, data_dir=tmp_path / "d", plugins=sample, env={"KEY": "topsecret-key-1"}
        ) as rd:
            r = await rd.client.post("/sample/events", json={"events": []})
            assert r.status_code == 401
            r = await rd.client.post(
                "/sample/events", json={"events": []}, headers={"x-sample-key": "wrong"}
            )
            assert r.status_code == 403
            r = await rd.client.post(
                "/sample/events",
                json={"events": [{"kind": "view", "user": "topsecret-key-1"}]},
                headers={"x-sample-key": "topsecret-key-1"},
            )
            assert r.status_code == 202
            import structlog

            structlog.get_logger().info("test.probe", value="has topsecret-key-1 inside")
    finally:
        configure_logging("warning", "console", cache=False)
    logs = stream.getvalue()
    assert '"event":"daemon.ready"' in logs
    assert "topsecret-key-1" not in logs
    assert f"has {REDACTED} inside" in logs


async def test_events_matching_no_route_are_counted_not_silently_lost(
    tmp_path, sample, sample_config
):
    sample_config["routes"][0]["filter"] = {"types": ["purchase"]}
    async with running_daemon(sample_config, data_dir=tmp_path / "d", plugins=sample) as rd:
        r = await rd.client.post(
            "/sample/events",
            json={"events": [{"kind": "view", "user": "v"}, {"kind": "buy", "user": "b"}]},
        )
        assert r.status_code == 202
        assert rd.metric("router_events_unrouted_total", source="in") == 1
        assert rd.metric("router_sink_events_accepted_total", sink="out") == 1
        out = await wait_for_lines(tmp_path / "out.ndjson", 1)
    assert [e["identity"]["user_id"] for e in out] == ["b"]
