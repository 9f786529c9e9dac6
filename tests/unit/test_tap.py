"""tap: a real daemon on loopback, taps read over its admin listener, a recording upstream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import httpx
import orjson
import pytest
import trio
import yaml

from router.cli import main
from router.config import RouteConfig
from router.log import Redactor
from router.tap import MASKED, Seen, TapFilter, TapHub, TapQueryError, parse_query, render
from router.testing.daemon import build_config, running_daemon
from router.testing.process import DaemonProcess
from router.testing.upstream import FakeUpstream, Reply
from tests.helpers.conscent_traffic import ping
from tests.helpers.ports import reserved_port

#: Configured as a sink's key: it must never leave the daemon through a tap.
SECRET = "sink-key-9b41d7c0e2"
TOKEN = "admin-token-c3e81f"


def doc(upstream: str, **admin) -> dict:
    return {
        "server": {"max_body_bytes": 8 << 20},
        "sources": {
            "in": {"plugin": "sample", "auth": "none", "prefix": "/in"},
            "lax": {
                "plugin": "sample",
                "auth": "none",
                "on_invalid": "quarantine",
                "prefix": "/lax",
            },
            "locked": {
                "plugin": "sample",
                "auth": {"keys": ["key-0f9e8d7c"]},
                "prefix": "/locked",
            },
        },
        "sinks": {
            "hook": {
                "plugin": "sample",
                "url": upstream,
                "api_key": SECRET,
                "batch": {"max_events": 1, "max_wait": 0.005},
                "retry": {"max_attempts": 1},
            },
        },
        "routes": [
            {"from": ["in", "lax"], "to": "hook"},
            {"from": "in", "to": "hook", "filter": {"types": ["purchase"]}},
        ],
        **({"admin": admin} if admin else {}),
    }


def events(user: str, n: int, kind: str = "view") -> list[dict]:
    return [{"kind": kind, "user": user, "n": i} for i in range(n)]


class TapReader:
    """One ``GET /admin/tap`` client: every line it read, parsed."""

    def __init__(self, admin_url: str, **params: object):
        self.admin_url = admin_url
        self.params = {k: str(v) for k, v in params.items()}
        self.lines: list[dict] = []
        self.done = trio.Event()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with (
            httpx.AsyncClient(base_url=self.admin_url, timeout=httpx.Timeout(30, read=None)) as c,
            c.stream("GET", "/admin/tap", params=self.params) as reply,
        ):
            assert reply.status_code == 200, await reply.aread()
            lines = reply.aiter_lines()
            attached = orjson.loads(await lines.__anext__())
            assert attached["tap"] == "attached"
            task_status.started(self)
            async for line in lines:
                self.lines.append(orjson.loads(line))
        self.done.set()

    async def finished(self) -> TapReader:
        with trio.fail_after(30):
            await self.done.wait()
        return self

    @property
    def events(self) -> list[dict]:
        return [line for line in self.lines if "tap" not in line]

    @property
    def dropped(self) -> list[int]:
        return [line["count"] for line in self.lines if line.get("tap") == "dropped"]


async def post(client: httpx.AsyncClient, source: str, batch: list[dict]) -> httpx.Response:
    return await client.post(f"/{source}/sample/events", json={"events": batch})


async def clients(rd, source: str, requests: int, per_request: int, concurrency: int) -> list[int]:
    """``concurrency`` clients each posting ``requests`` requests; every status."""
    statuses: list[int] = []

    async def one(c: int) -> None:
        for r in range(requests):
            reply = await post(rd.client, source, events(f"c{c}r{r}", per_request))
            statuses.append(reply.status_code)

    async with trio.open_nursery() as nursery:
        for c in range(concurrency):
            nursery.start_soon(one, c)
    return statuses


@pytest.fixture
async def upstream():
    async with FakeUpstream.running() as up:
        yield up


async def until(condition) -> None:
    """Wait for a state the daemon reaches on its own (a detach after the client left)."""
    with trio.fail_after(30):
        while not condition():  # noqa: ASYNC110 - no event to wait on from outside
            await trio.sleep(0.01)


# -- a source ------------------------------------------------------------------------


async def test_taps_on_a_source_see_exactly_the_accepted_events_under_load(
    upstream, tmp_path, sample
):
    async with (
        running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd,
        trio.open_nursery() as nursery,
    ):
        total = 4 * 25 * 4
        # Two taps see everything at once; a third stops at its limit.
        a = await nursery.start(TapReader(rd.admin_url, source="in", limit=total).run)
        b = await nursery.start(TapReader(rd.admin_url, source="in", limit=total).run)
        few = await nursery.start(TapReader(rd.admin_url, source="in", limit=7).run)
        # Another source's traffic is not this tap's.
        assert (await post(rd.client, "lax", events("other", 3))).status_code == 202
        statuses = await clients(rd, "in", requests=25, per_request=4, concurrency=4)
        assert statuses == [202] * 100
        for reader in (a, b, few):
            await reader.finished()
    sent = Counter((f"c{c}r{r}", i) for c in range(4) for r in range(25) for i in range(4))
    for reader in (a, b):
        seen = Counter(
            (e["event"]["identity"]["user_id"], e["event"]["properties"]["n"])
            for e in reader.events
        )
        assert seen == sent
        assert {(e["point"], e["source"], e["kind"]) for e in reader.events} == {
            ("source", "in", "accepted")
        }
        assert len({e["event_id"] for e in reader.events}) == total
        assert reader.dropped == [0]  # the stream's last line
    assert len(few.events) == 7 and few.lines[-1] == {"tap": "dropped", "count": 0}
    assert not rd.daemon.tap.active


async def test_rejections_and_quarantined_events_show_with_their_reason(upstream, tmp_path, sample):
    async with (
        running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd,
        trio.open_nursery() as nursery,
    ):
        reader = await nursery.start(TapReader(rd.admin_url).run)
        bad_kind = [{"kind": "nope", "user": "u"}]
        assert (await post(rd.client, "in", bad_kind)).status_code == 400
        bad_json = await rd.client.post("/in/sample/events", content=b"{not json")
        assert bad_json.status_code == 400
        wrong_key = await rd.client.post(
            "/locked/sample/events",
            json={"events": events("u", 1)},
            headers={"x-sample-key": "guess"},
        )
        assert wrong_key.status_code == 403
        mixed = [{"kind": "view", "user": "ok"}, {"kind": "view", "user": ""}]
        assert (await post(rd.client, "lax", mixed)).status_code == 202
        # Every point's lines come (routes' and sinks' too): wait for the two of "lax".
        with trio.fail_after(30):
            while {"quarantined", "accepted"} - {line["kind"] for line in reader.events}:  # noqa: ASYNC110
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    lines = [line for line in reader.events if line.get("point") == "source"]
    rejected = [line for line in lines if line["kind"] == "rejected"]
    assert [(line["source"], line["status"]) for line in rejected] == [
        ("in", 400),
        ("in", 400),
        ("locked", 403),
    ]
    assert "events[0].kind" in rejected[0]["reason"]
    assert rejected[0]["event"] == {"events": bad_kind}  # what the source received
    assert "not valid JSON" in rejected[1]["reason"]
    assert rejected[1]["event"] == "{not json"
    assert "invalid credential" in rejected[2]["reason"]
    [quarantined] = [line for line in lines if line["kind"] == "quarantined"]
    assert quarantined["source"] == "lax" and quarantined["event"] == {"kind": "view", "user": ""}
    assert "user" in quarantined["reason"]
    [accepted] = [line for line in lines if line["kind"] == "accepted"]
    assert accepted["event"]["identity"]["user_id"] == "ok"


# -- a route and a sink ----------------------------------------------------------------


async def test_a_sink_tap_sees_deliveries_and_dead_letters_with_their_reason(
    upstream, tmp_path, sample
):
    upstream.handler = lambda request: (
        Reply(400, {"error": "user refused"}) if b'"refuse-me"' in request.body else None
    )
    async with (
        running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd,
        trio.open_nursery() as nursery,
    ):
        vendor = await nursery.start(
            TapReader(rd.admin_url, sink="hook", limit=5, form="vendor").run
        )
        canonical = await nursery.start(TapReader(rd.admin_url, sink="hook", limit=5).run)
        batch = [
            *events("good", 3),
            {"kind": "view", "user": "refuse-me"},
            {"kind": "odd", "user": "untranslatable"},
        ]
        assert (await post(rd.client, "lax", batch)).status_code == 202
        await vendor.finished()
        await canonical.finished()
    for reader in (vendor, canonical):
        kinds = Counter(line["kind"] for line in reader.events)
        assert kinds == {"delivered": 3, "dead_lettered": 2}
        assert {line["sink"] for line in reader.events} == {"hook"}
    by_kind = {(line["kind"], line.get("reason")): line for line in vendor.events}
    refused = by_kind["dead_lettered", "rejected"]
    assert refused["status"] == 400 and "user refused" in refused["response"]
    assert refused["event"] == {"kind": "view", "user": "refuse-me"}  # the payload sent
    untranslatable = next(line for line in vendor.events if line.get("code") == "untranslatable")
    assert "no sample kind for odd" in untranslatable["reason"]
    delivered = sorted(
        line["event"]["identity"]["user_id"] + str(line["event"]["properties"]["n"])
        for line in canonical.events
        if line["kind"] == "delivered"
    )
    assert delivered == ["good0", "good1", "good2"]
    assert len(upstream.accepted) == 3


async def test_a_route_tap_sees_what_that_route_passes(upstream, tmp_path, sample):
    async with (
        running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd,
        trio.open_nursery() as nursery,
    ):
        by_index = await nursery.start(TapReader(rd.admin_url, route=1, limit=2).run)
        by_name = await nursery.start(TapReader(rd.admin_url, route="in,lax -> hook", limit=4).run)
        mixed = [*events("v", 2), *events("b", 2, kind="buy")]
        assert (await post(rd.client, "in", mixed)).status_code == 202
        await by_index.finished()
        await by_name.finished()
    assert [line["event"]["type"] for line in by_index.events] == ["purchase", "purchase"]
    assert {line["route"] for line in by_index.events} == {"in -> hook"}
    assert {line["kind"] for line in by_index.events} == {"routed"}
    assert by_index.events[0]["sinks"] == ["hook"]
    assert len(by_name.events) == 4


async def test_type_and_sample_filter_what_a_tap_sees(upstream, tmp_path, sample):
    async with (
        running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd,
        trio.open_nursery() as nursery,
    ):
        buys = await nursery.start(
            TapReader(rd.admin_url, source="in", type="purchase", limit=5).run
        )
        sampled = await nursery.start(TapReader(rd.admin_url, source="in", sample=0.5).run)
        views = await nursery.start(
            TapReader(rd.admin_url, sink="hook", type="page_view", limit=3).run
        )
        for i in range(5):
            mixed = [*events(f"v{i}", 40), *events(f"b{i}", 1, kind="buy")]
            assert (await post(rd.client, "in", mixed)).status_code == 202
        await buys.finished()
        await views.finished()
        await until(lambda: len(sampled.events) > 0)
        rd.daemon.tap.close()  # ends the unlimited one
        await sampled.finished()
    assert [line["event"]["identity"]["user_id"] for line in buys.events] == [
        f"b{i}" for i in range(5)
    ]
    assert {line["event"]["type"] for line in views.events} == {"page_view"}
    # Half of 205, give or take: far from all and far from none.
    assert 40 < len(sampled.events) < 165


# -- masking and secrets -----------------------------------------------------------------


async def test_masked_fields_are_masked_and_listed_and_no_secret_leaves(upstream, tmp_path, sample):
    config = doc(upstream.url, tap={"mask": ["identity.user_id", "properties.n", "user"]})
    async with running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd:
        async with trio.open_nursery() as nursery:
            canonical = await nursery.start(TapReader(rd.admin_url, source="in", limit=2).run)
            vendor = await nursery.start(
                TapReader(rd.admin_url, source="in", limit=2, form="vendor").run
            )
            everything = await nursery.start(TapReader(rd.admin_url, limit=6).run)
            # The secret as data: it is redacted, and the line says where.
            batch = [{"kind": "view", "user": "alice", "n": 1}, {"kind": "buy", "user": SECRET}]
            assert (await post(rd.client, "in", batch)).status_code == 202
            for reader in (canonical, vendor, everything):
                await reader.finished()
        text = "\n".join(orjson.dumps(line).decode() for line in everything.lines)
        assert SECRET not in text
    first, second = canonical.events
    assert first["event"]["identity"]["user_id"] == MASKED
    assert first["event"]["properties"]["n"] == MASKED
    assert first["masked"] == ["event.identity.user_id", "event.properties.n"]
    assert second["masked"] == ["event.identity.user_id"]  # no n to mask
    first, second = vendor.events
    assert first["event"] == {"kind": "view", "user": MASKED, "n": MASKED}
    assert first["masked"] == ["event.user", "event.n"]
    # Unmasked by config, the secret is still redacted, and listed.
    unmasked = doc(upstream.url, tap={"mask": []})
    async with (
        running_daemon(unmasked, data_dir=tmp_path / "d2", plugins=sample) as rd,
        trio.open_nursery() as nursery,
    ):
        reader = await nursery.start(TapReader(rd.admin_url, source="in", limit=1).run)
        assert (await post(rd.client, "in", [{"kind": "buy", "user": SECRET}])).status_code == 202
        await reader.finished()
    [line] = reader.events
    assert line["event"]["identity"]["user_id"] == "[redacted]"
    assert line["masked"] == ["event.identity.user_id"]


def test_a_path_masks_in_lists_and_a_name_at_any_depth_in_the_vendor_form():
    seen = Seen("source", "in", "accepted", raw={"a": [{"email": "x@y"}, {"email": None}]})
    line = render(seen, "vendor", ["properties.email"], Redactor(()), None)
    assert line["event"] == {"a": [{"email": MASKED}, {"email": None}]}
    assert line["masked"] == ["event.a[0].email"]


# -- slow taps, disconnects, the idle hub --------------------------------------------------


@pytest.mark.slow
async def test_a_tap_that_never_reads_drops_its_own_lines_and_never_slows_ingest(
    upstream, tmp_path, sample
):
    async with running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd:
        hub = rd.daemon.tap
        async with (
            httpx.AsyncClient(base_url=rd.admin_url, timeout=httpx.Timeout(30, read=None)) as c,
            c.stream("GET", "/admin/tap", params={"source": "in"}) as reply,
        ):
            lines = reply.aiter_lines()
            assert orjson.loads(await lines.__anext__())["tap"] == "attached"
            # Big events: the socket buffers fill fast, then the tap's channel.
            fat = "x" * 2000
            statuses: list[int] = []

            async def client(c: int) -> None:
                for r in range(10):
                    batch = [{"kind": "view", "user": f"{fat}{c}-{r}", "n": i} for i in range(500)]
                    statuses.append((await post(rd.client, "in", batch)).status_code)

            with trio.fail_after(120):  # a tap that held ingest up would never get here
                async with trio.open_nursery() as nursery:
                    for c in range(4):
                        nursery.start_soon(client, c)
            assert statuses == [202] * 40
            assert hub.taps[0].dropped > 0
            # Reading at last: what was buffered, then how much was dropped.
            dropped = None
            with trio.fail_after(60):
                async for line in lines:
                    parsed = orjson.loads(line)
                    if parsed.get("tap") == "dropped":
                        dropped = parsed["count"]
                        break
            assert dropped is not None and dropped > 0
        # The client left: its tap is detached and holds nothing.
        await until(lambda: not hub.active)
        assert hub.taps == [] and hub.buffered() == 0


async def test_with_no_tap_nothing_is_buffered_and_a_client_that_leaves_detaches(
    upstream, tmp_path, sample
):
    async with running_daemon(doc(upstream.url), data_dir=tmp_path / "d", plugins=sample) as rd:
        hub = rd.daemon.tap
        assert rd.source("in").tap is hub and rd.runner("hook").tap is hub
        await clients(rd, "in", requests=5, per_request=10, concurrency=2)
        await upstream.wait_for(100)
        assert not hub.active and hub.taps == [] and hub.buffered() == 0
        async with (
            httpx.AsyncClient(base_url=rd.admin_url, timeout=httpx.Timeout(30, read=None)) as c,
            c.stream("GET", "/admin/tap") as reply,
        ):
            lines = reply.aiter_lines()
            assert orjson.loads(await lines.__anext__())["tap"] == "attached"
            assert hub.active and len(hub.taps) == 1
            await post(rd.client, "in", events("while-attached", 5))
            assert orjson.loads(await lines.__anext__())["kind"] == "accepted"
        await until(lambda: not hub.active)
        assert hub.taps == [] and hub.buffered() == 0
        await clients(rd, "in", requests=5, per_request=10, concurrency=2)
        assert hub.buffered() == 0


def test_the_hub_is_active_only_while_a_tap_is_attached():
    hub = TapHub()
    assert not hub.active
    one, two = hub.attach(TapFilter()), hub.attach(TapFilter(point="sink", name="x"))
    hub.detach(one)
    assert hub.active and hub.taps == [two]
    hub.detach(two)
    assert not hub.active and hub.taps == []


def test_a_full_tap_counts_what_it_drops_and_keeps_the_rest():
    hub = TapHub()
    tap = hub.attach(TapFilter(), capacity=3)
    for _ in range(5):
        hub.rejected("in", b"{}", ValueError("no"))
    assert tap.dropped == 2 and hub.buffered() == 3


# -- the query ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"source": "nope"}, "source"),
        ({"sink": "nope"}, "sink"),
        ({"route": "7"}, "route"),
        ({"route": "x -> y"}, "route"),
        ({"source": "in", "sink": "hook"}, "sink"),
        ({"form": "xml"}, "form"),
        ({"sample": "0"}, "sample"),
        ({"sample": "lots"}, "sample"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_query_names_its_parameter(query, param, sample, tmp_path):
    config, _ = build_config(doc("http://127.0.0.1:9"), plugins=sample)
    with pytest.raises(TapQueryError) as caught:
        parse_query(query, config)
    assert caught.value.param == param and str(caught.value).startswith(f"{param}: ")


def test_a_route_is_named_by_index_or_from_and_to(sample):
    config, _ = build_config(doc("http://127.0.0.1:9"), plugins=sample)
    flt, form, limit = parse_query({"route": "in,lax -> hook", "limit": "3"}, config)
    assert flt.route == config.routes[0] and flt.name == "in,lax -> hook"
    assert (form, limit) == ("canonical", 3)
    assert parse_query({"route": "1"}, config)[0].route == RouteConfig(
        ("in",), ("hook",), frozenset({"purchase"})
    )


async def test_the_admin_tap_answers_a_bad_query_400_and_needs_the_token(
    upstream, tmp_path, sample
):
    config = doc(upstream.url, token=TOKEN)
    async with (
        running_daemon(config, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url) as admin,
    ):
        assert (await admin.get("/admin/tap")).status_code == 401
        r = await admin.get(
            "/admin/tap", params={"sample": "2"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert r.status_code == 400
        assert r.json() == {
            "error": "Bad Request",
            "message": "sample: 2 is not a fraction above 0 and at most 1",
            "status": 400,
        }
        assert not rd.daemon.tap.active


# -- the command ---------------------------------------------------------------------


def builtin(path, **admin) -> dict:
    """A config a ``router run`` subprocess can load: built-in plugins only."""
    return {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": str(path)}},
        "routes": [{"from": "in", "to": "out"}],
        **({"admin": admin} if admin else {}),
    }


CONSCENT = {"messageBody": [ping("reader-1")]}


async def tap_process(*args: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "router", "tap", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "ROUTER_DEBUG": ""},
    )


async def read_lines(stream, lines: list[bytes], first: trio.Event) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines.extend(complete)
        if lines:
            first.set()
    first.set()


@pytest.mark.slow
async def test_router_tap_prints_limit_events_and_exits(tmp_path):
    config = tmp_path / "router.yaml"
    config.write_text(yaml.safe_dump(builtin(tmp_path / "out.ndjson", token=TOKEN)))
    async with trio.open_nursery() as nursery:
        daemon = await DaemonProcess(
            ["run", "-c", str(config), "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")]
        ).start(nursery)
        try:
            tap = await tap_process(
                "--admin", daemon.admin_url, "--token", TOKEN, "--source", "in", "--limit", "3"
            )
            lines: list[bytes] = []
            attached = trio.Event()
            nursery.start_soon(read_lines, tap.stdout, lines, attached)
            with trio.fail_after(30):
                await attached.wait()
            assert orjson.loads(lines[0])["tap"] == "attached"
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                for _ in range(4):
                    r = await client.post("/collect/event", json=CONSCENT)
                    assert r.status_code < 300, r.text
            with trio.fail_after(30):
                assert await tap.wait() == 0
            stderr = await tap.stderr.receive_some()
            assert stderr in (b"", None)
            parsed = [orjson.loads(line) for line in lines if line]
            assert [p.get("kind") for p in parsed[1:4]] == ["accepted", "accepted", "accepted"]
            assert parsed[1]["event"]["identity"]["user_id"] == "reader-1"
            assert parsed[4:] == [{"tap": "dropped", "count": 0}]

            # The wrong token: one line, exit 1.
            refused = await tap_process("--admin", daemon.admin_url, "--token", "wrong")
            with trio.fail_after(30):
                assert await refused.wait() == 1
            err = (await refused.stderr.receive_some()).decode()
            assert err.count("\n") == 1 and "401" in err and "Traceback" not in err

            # Ctrl-C: 130, and no traceback.
            waiting = await tap_process("--admin", daemon.admin_url, "--token", TOKEN)
            started = trio.Event()
            seen: list[bytes] = []
            nursery.start_soon(read_lines, waiting.stdout, seen, started)
            with trio.fail_after(30):
                await started.wait()
            waiting.send_signal(signal.SIGINT)
            with trio.fail_after(30):
                assert await waiting.wait() == 130
            assert b"Traceback" not in (await waiting.stderr.receive_some() or b"")
        finally:
            daemon.signal()
            await daemon.wait()


def test_router_tap_with_no_daemon_is_one_line_and_exit_1(capsys):
    with reserved_port() as port:  # nothing listens there
        assert main(["tap", "--admin", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"127.0.0.1:{port}" in err and "Traceback" not in err


def test_a_large_rejected_body_is_kept_in_part_and_says_how_large():
    hub = TapHub()
    tap = hub.attach(TapFilter())
    body = b'{"events": [' + b'"x",' * 40_000 + b'"x"]}'
    hub.rejected("in", body, ValueError("too many"))
    seen = tap.receive.receive_nowait()
    line = render(seen, "canonical", [], Redactor(()), None)
    assert line["body_bytes"] == len(body) and len(line["event"]) == 4096
    assert line["reason"] == "too many" and line["form"] == "vendor"


async def test_events_relayed_as_received_are_decoded_for_the_tap_only(upstream, tmp_path):
    config = {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"out": {"plugin": "conscent", "url": upstream.url, "api_key": "k"}},
        "routes": [{"from": "in", "to": "out"}],
    }
    async with (
        running_daemon(config, data_dir=tmp_path / "d", autoload=True) as rd,
        trio.open_nursery() as nursery,
    ):
        assert not rd.source("in")._decode  # the relay skips decoding
        canonical = await nursery.start(TapReader(rd.admin_url, source="in", limit=1).run)
        routed = await nursery.start(TapReader(rd.admin_url, route=0, limit=1).run)
        vendor = await nursery.start(
            TapReader(rd.admin_url, sink="out", form="vendor", limit=1).run
        )
        r = await rd.client.post("/collect/event", json={"messageBody": [ping("relayed")]})
        assert r.status_code < 300
        for reader in (canonical, routed, vendor):
            await reader.finished()
    for reader in (canonical, routed):
        [line] = reader.events
        assert line["event"]["identity"]["user_id"] == "relayed"
        assert line["event"]["source"] == "in" and line["event"]["vendor"] == "conscent"
    [sent] = vendor.events
    assert sent["kind"] == "delivered" and sent["event"]["userId"] == "relayed"
