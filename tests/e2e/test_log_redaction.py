"""No configured secret reaches any output line of the daemon, whatever fails.

The daemon runs as a real process (JSON logs at debug level, then console
logs with two workers), with every kind of credential configured: source
keys literal and from ``${ENV}``, a Conscent ``client_ids`` allow-list, a
plugin option declared secret in its schema, sink api keys, a Redis URL
password. Then every error path is driven: missing and wrong credentials,
plugin exceptions holding the secret in their locals and messages, a core
bug, an exception that escapes to hypercorn, a storage error (Redis refuses
the password), upstream 400/500 answers whose bodies echo the sink's key, and
the access log of a request carrying the key in its query string.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import trio

from router.testing.daemon import running_daemon
from router.testing.process import DaemonProcess, on_any_admin_port
from router.testing.upstream import FakeUpstream, Reply
from tests.helpers import leaky_plugin

TESTS = Path(__file__).parent.parent
SEGMENTO_EVENT = json.loads((TESTS / "data/payloads/segmento/minimal.json").read_text())

ENV = {
    "LEAKY_KEY": "env-ingest-key-7f3a9c",
    "LEAKY_SIGNATURE": "env-sink-signature-2b8d",
    "REDIS_PASSWORD": "redis-password-9e1c",
}
LITERAL_KEY = "literal-ingest-key-4d2e"
PASSPHRASE = "plugin-passphrase-6a0f"
CLIENT_ID = "conscent-client-5c7b"
SEGMENTO_KEY = "segmento-authkey-1f9e"
SEGMENTO_SINK_KEY = "segmento-sink-key-8a3d"
SECRETS = [*ENV.values(), LITERAL_KEY, PASSPHRASE, CLIENT_ID, SEGMENTO_KEY, SEGMENTO_SINK_KEY]

#: Dead letters the driven traffic makes: leaky 400, leaky 500 x2, leaky sink raising, segmento 400.
DEAD_LETTERS = 4


def write_config(tmp_path: Path, upstream: str, fmt: str) -> str:
    retry = "{max_attempts: 2, initial_backoff: 0.01, max_backoff: 0.05}"
    path = tmp_path / f"router-{fmt}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        logging: {{level: debug, format: {fmt}}}
        server: {{shutdown_timeout: 2, access_log: true}}
        redis:
          url: "redis://default:${{REDIS_PASSWORD}}@127.0.0.1:1/0"
          connect_timeout: 0.5
          command_timeout: 0.5
          reconnect: {{initial_backoff: 0.05, max_backoff: 0.2}}
        sources:
          leaky:
            plugin: leaky
            auth: {{keys: ["${{LEAKY_KEY}}", {LITERAL_KEY}]}}
            passphrase: {PASSPHRASE}
          conscent:
            plugin: conscent
            auth: {{client_ids: [{CLIENT_ID}]}}
          segmento:
            plugin: segmento
            auth: {{keys: [{SEGMENTO_KEY}]}}
        sinks:
          up:
            plugin: leaky
            url: {upstream}
            signature: ${{LEAKY_SIGNATURE}}
            batch: {{max_events: 1, max_wait: 0.01}}
            retry: {retry}
          stored:
            plugin: leaky
            url: {upstream}
            signature: ${{LEAKY_SIGNATURE}}
            buffer: redis
          seg:
            plugin: segmento
            url: {upstream}/seg
            api_key: {SEGMENTO_SINK_KEY}
            batch: {{max_events: 1, max_wait: 0.01}}
            retry: {retry}
        routes:
          - {{from: leaky, to: up}}
          - {{from: conscent, to: stored}}
          - {{from: segmento, to: seg}}
        """)
    )
    return str(path)


def plugin_env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH and an entry point: tests/helpers/leaky_plugin.py as a third-party plugin."""
    site = tmp_path / "site"
    dist = site / "leaky_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: leaky-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[router.plugins]\nleaky = tests.helpers.leaky_plugin\n")
    return {**ENV, "PYTHONPATH": f"{site}:{TESTS.parent}"}


def upstream_answer(request):
    """Reject or fail with the credential the request carried echoed in the body."""
    key = request.headers.get("x-leaky-signature") or request.headers.get("authkey", "")
    if request.path.startswith("/seg") or b'"reject"' in request.body:
        return Reply(400, {"error": f"invalid credential {key}", "headers": request.headers})
    if b'"fail"' in request.body:
        return Reply(500, f"internal error while checking {key}")
    return Reply(200, {})


class ConsoleAwareDaemon(DaemonProcess):
    """Also finds ``daemon.ready`` (a group's: ``workers.ready``) and its address in console."""

    def _line(self, line: bytes) -> None:
        super()._line(line)
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.raw[-1])  # no colours
        ready = "workers.ready" in text or ("daemon.ready" in text and "worker=" not in text)
        if not self.url and ready:
            # binds=, not admin= (which comes first): the ingest address.
            match = re.search(r"binds=\['(http://127\.0\.0\.1:\d+)", text)
            if match:
                self.url = match.group(1)
                self._ready.set()


def leaky(*kinds: str) -> dict:
    return {"events": [{"kind": kind, "user": f"u-{kind}"} for kind in kinds]}


async def drive(url: str) -> None:
    """Every error path, each checked to have happened as intended."""
    key = {"x-leaky-key": ENV["LEAKY_KEY"]}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def post(path, status, *, mode=None, headers=None, **kw):
            headers = {**(headers or {}), **({"x-leaky-mode": mode} if mode else {})}
            try:
                r = await client.post(path, headers=headers, **kw)
            except httpx.RemoteProtocolError:
                assert status is None, path
                return None
            assert status is None or r.status_code == status, (path, mode, r.text)
            return r

        # Missing and wrong credentials.
        await post("/leaky/events", 401, json=leaky("view"))
        await post("/leaky/events", 403, json=leaky("view"), headers={"x-leaky-key": "nope"})
        await post(
            "/leaky/events",
            403,
            json=leaky("view"),
            headers={"x-leaky-key": ENV["LEAKY_KEY"] + "-but-longer"},
        )
        segmento = "/api/v5/segmento/user-events"
        await post(segmento, 401, json=SEGMENTO_EVENT)
        await post(segmento, 403, json=SEGMENTO_EVENT, headers={"authkey": SEGMENTO_KEY[:-1]})
        await post(
            "/collect/event",
            403,
            json={"messageBody": [{"clientId": CLIENT_ID + "x", "eventType": "PING"}]},
        )
        # Plugin exceptions with the key in their locals and messages.
        await post("/leaky/events", 500, mode="split", json=leaky("view"), headers=key)
        await post("/leaky/events", 202, json=leaky("explode"), headers=key)
        await post("/leaky/events", 400, mode="render", content=b"{", headers=key)
        # A core bug, and an exception that escapes the application to hypercorn.
        await post("/leaky/events", 500, mode="core", json=leaky("view"), headers=key)
        await post("/leaky/events", None, mode="asgi", json=leaky("view"), headers=key)
        # A storage error: Redis is down, the redis-buffered sink cannot store.
        conscent = {
            "clientId": CLIENT_ID,
            "eventType": "PING",
            "eventLocation": "PAGE",
            "anonId": "0b7e3c6a-4d1f-4a8e-9c2b-5f6d7e8a9b0c",
            "pingId": "1c8f4d7b-5e2a-4b9f-8d3c-6a7e8f9a0b1d",
            "active": 1,
        }
        await post("/collect/event", 503, json={"messageBody": [conscent]})
        # Accepted events whose delivery fails with the sink's key echoed back; the key
        # also travels in the query string, in case the access log ever records it.
        await post(
            f"/leaky/events?api_key={ENV['LEAKY_KEY']}",
            202,
            json=leaky("reject", "fail", "raise", "view"),
            headers={"x-leaky-key": LITERAL_KEY},
        )
        await post(segmento, 200, json=SEGMENTO_EVENT, headers={"authkey": SEGMENTO_KEY})


async def run_and_capture(tmp_path: Path, fmt: str, *extra: str) -> list[str]:
    async with FakeUpstream.running() as upstream:
        upstream.handler = upstream_answer
        config = write_config(tmp_path, upstream.url, fmt)
        args = ["run", "-c", config, "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / fmt)]
        daemon = ConsoleAwareDaemon([*args, *extra], env=plugin_env(tmp_path))
        async with trio.open_nursery() as nursery:
            await daemon.start(nursery)
            await drive(daemon.url)
            with trio.fail_after(30):
                while sum("sink.dead_lettered" in line for line in daemon.raw) < DEAD_LETTERS:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            daemon.signal(signal.SIGTERM)
            await daemon.wait()
    return daemon.raw


def assert_no_secret(lines: list[str]) -> None:
    leaks = [(secret, line) for line in lines for secret in SECRETS if secret in line]
    assert not leaks, "\n".join(f"{secret!r} in: {line[:600]}" for secret, line in leaks[:5])


@pytest.mark.slow
async def test_no_secret_in_any_json_log_line_whatever_fails(tmp_path):
    lines = await run_and_capture(tmp_path, "json")
    assert_no_secret(lines)
    logs = [json.loads(line) for line in lines if line.startswith("{")]
    events = {entry.get("event") for entry in logs}
    # Each failure was logged, so the absence of secrets means something.
    for expected in (
        "http.unhandled_error",
        "ingest.plugin_error",
        "ingest.decode_failed",
        "sink.plugin_error",
        "sink.send_failed",
        "sink.dead_lettered",
        "redis.unavailable",
    ):
        assert expected in events, expected
    assert any(entry.get("logger") == "hypercorn.error" for entry in logs)
    assert any("exception" in entry for entry in logs), "no traceback was logged"
    assert any('"POST /leaky/events 1.1" 202' in line for line in lines), "no access log"
    assert any("[redacted]" in str(entry.get("error")) for entry in logs)


@pytest.mark.slow
async def test_no_secret_in_any_console_log_line_of_workers(tmp_path):
    lines = await run_and_capture(tmp_path, "console", "--workers", "2")
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]  # no colours
    assert_no_secret(lines)
    assert_no_secret(plain)
    text = "\n".join(plain)
    for expected in ("http.unhandled_error", "ingest.plugin_error", "Traceback", "worker="):
        assert expected in text, expected


async def test_readyz_shows_a_sinks_last_error_without_its_key(tmp_path):
    config = {
        "sources": {"in": {"plugin": "leaky", "auth": "none"}},
        "sinks": {
            "up": {
                "plugin": "leaky",
                "url": "http://127.0.0.1:1",
                "signature": "${LEAKY_SIGNATURE}",
                "batch": {"max_wait": 0.01},
                "retry": {"initial_backoff": 0.01, "max_backoff": 0.05},
            }
        },
        "routes": [{"from": "in", "to": "up"}],
    }
    async with running_daemon(
        config, data_dir=tmp_path / "d", plugins=[("leaky", leaky_plugin)], env=ENV
    ) as rd:
        r = await rd.client.post("/leaky/events", json=leaky("raise"))
        assert r.status_code == 202
        with trio.fail_after(10):
            while not rd.runner("up").last_error:  # noqa: ASYNC110
                await trio.sleep(0.01)
        last_error = (await rd.client.get("/readyz")).json()["sinks"]["up"]["last_error"]
    assert last_error == "leaky sink refused to send with [redacted]"


async def test_a_startup_error_printed_by_router_run_quotes_no_secret(tmp_path):
    config = tmp_path / "router.yaml"
    config.write_text(
        textwrap.dedent("""\
        sources: {in: {plugin: leaky, auth: none}}
        sinks: {up: {plugin: leaky, url: "http://refuse.invalid", signature: "${LEAKY_SIGNATURE}"}}
        routes: [{from: in, to: up}]
        """)
    )
    result = await trio.run_process(
        [
            sys.executable,
            "-m",
            "router",
            *on_any_admin_port(["run", "-c", str(config), "--bind", "127.0.0.1:0"]),
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, **plugin_env(tmp_path)},
    )
    assert result.returncode == 2
    assert b"leaky sink will not start with [redacted]" in result.stderr
    assert_no_secret([result.stdout.decode(), result.stderr.decode()])
