"""The status page in a real headless browser (Debian's chromium) while traffic flows.

The DOM chromium built is checked, and its screenshot is kept as a test
artifact in ``$ROUTER_TEST_ARTIFACTS`` (default ``build/test-artifacts/``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
import yaml

from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Reply
from tests.helpers.dom import parse
from tests.helpers.sample_traffic import FAST_RETRY

ROOT = Path(__file__).parents[2]
TOKEN = "status-page-token-5d1"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
MARKUP = "<img src=x onerror=alert(1)>"


def artifacts() -> Path:
    """Where screenshots are kept: ``$ROUTER_TEST_ARTIFACTS`` or ``build/test-artifacts``."""
    directory = Path(os.environ.get("ROUTER_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium on PATH: apt-get install -y chromium (.ci/run installs it)"
    return found


def config(healthy: str, down: str, *, old: bool = True, broken: bool = False) -> dict:
    sink = {"plugin": "sample", "batch": {"max_events": 50, "max_wait": 0.01}}
    sinks = {
        "good": {**sink, "url": healthy},
        "bad": {**sink, "url": down, "retry": {**FAST_RETRY, "max_attempts": 2}},
    }
    if old:  # keeps retrying, so what it holds is still pending when a reload removes it
        sinks["old"] = {**sink, "url": down, "retry": FAST_RETRY}
    if broken:
        sinks["new"] = {"plugin": MARKUP}
    return {
        "sources": {"in": {"plugin": "sample", "auth": "none", "on_invalid": "quarantine"}},
        "sinks": sinks,
        "routes": [{"from": "in", "to": list(sinks)}],
        "admin": {"token": TOKEN},
    }


async def traffic(client: httpx.AsyncClient) -> None:
    """Events until cancelled, one invalid (quarantined) in every batch."""
    n = 0
    while True:
        events = [{"kind": "view", "user": f"u{n}-{i}"} for i in range(5)]
        events.append({"kind": "unknown-kind", "user": f"u{n}"})
        r = await client.post("/sample/events", json={"events": events})
        assert r.status_code == 202, r.text
        n += 1
        await trio.sleep(0.01)


async def status_when(admin: httpx.AsyncClient, ready) -> dict:
    with trio.fail_after(60):
        while True:
            status = (await admin.get("/admin/status")).json()
            if ready(status):
                return status
            await trio.sleep(0.05)


async def browse(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    with trio.fail_after(120):
        done = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


@pytest.mark.slow
async def test_the_status_page_in_a_headless_browser(tmp_path, sample, record_property):
    path = tmp_path / "router.yaml"
    async with (
        FakeUpstream.running(record=False) as healthy,
        FakeUpstream.running(default=Reply(503), record=False) as down,
    ):
        path.write_text(yaml.safe_dump(config(healthy.url, down.url)))
        async with (
            running_daemon(path, data_dir=tmp_path / "d", plugins=sample) as rd,
            httpx.AsyncClient(base_url=rd.admin_url, headers=BEARER, timeout=30) as admin,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(traffic, rd.client)
            await status_when(
                admin,
                lambda s: (
                    s["sinks"]["old"]["pending"] > 0
                    and (s["sinks"]["bad"]["dead_letters_stored"] or 0) > 0
                    and (s["quarantined"] or 0) > 0
                ),
            )
            path.write_text(yaml.safe_dump(config(healthy.url, down.url, old=False)))
            applied = await admin.post("/admin/reload")
            assert applied.json()["result"] == "applied", applied.text
            path.write_text(yaml.safe_dump(config(healthy.url, down.url, broken=True)))
            assert (await admin.post("/admin/reload")).status_code == 422
            # Rates cover the last seconds: wait until they show the traffic still flowing.
            await status_when(
                admin,
                lambda s: (
                    s["sources"]["in"]["events_per_s"] > 0
                    and s["sinks"]["good"]["delivered_per_s"] > 0
                    and s["sinks"]["bad"]["failing_for"] > 0
                ),
            )
            # The token once in the URL: the page trades it for a cookie and redirects.
            url = f"{rd.admin_url}/?token={TOKEN}"
            dom = (await browse("--dump-dom", url, profile=tmp_path / "p1")).stdout.decode()
            shot = artifacts() / "status-page.png"
            shot.unlink(missing_ok=True)
            await browse(
                f"--screenshot={shot}", "--window-size=1280,900", url, profile=tmp_path / "p2"
            )
            nursery.cancel_scope.cancel()
    record_property("screenshot", str(shot))
    print(f"status page screenshot: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

    doc = parse(dom)
    assert doc.find_all("form", id="login") == [], "the browser did not get past the token"
    assert doc.by_id("summary").attrs["data-status"] in ("ready", "degraded")
    route = doc.by_id("topology").one("tr", cls="route")
    assert [s.attrs["data-sink"] for s in route.find_all(cls="sink")] == ["good", "bad"]
    assert "failing" in route.one(cls="sink", data_sink="bad").classes

    sinks = doc.by_id("sinks")
    good, bad = sinks.one("tr", data_sink="good"), sinks.one("tr", data_sink="bad")
    assert "failing" not in good.classes and good.one(cls="state").text == "ok"
    assert float(good.one(cls="delivered-per-s").text.replace(",", "")) > 0
    assert "failing" in bad.classes and bad.one(cls="state").text.startswith("failing for")
    assert bad.one(cls="last-error").text == "upstream answered 503"
    source = doc.by_id("sources").one("tr", data_source="in")
    assert float(source.one(cls="events-per-s").text.replace(",", "")) > 0

    stored = doc.by_id("stored")
    dead = stored.one("tr", data_sink="bad").one(cls="dead-letters").text
    assert int(dead.replace(",", "")) > 0
    assert int(stored.one(id="quarantined").one(cls="count").text.replace(",", "")) > 0
    orphan = doc.by_id("orphaned").one("tr", data_sink="old")
    assert int(orphan.one(cls="pending").text.replace(",", "")) > 0

    rejected, applied = doc.by_id("reloads").find_all("tr", cls="reload")  # newest first
    assert (rejected.one(cls="result").text, rejected.one(cls="trigger").text) == (
        "rejected",
        "api",
    )
    assert MARKUP in rejected.one(cls="problems").text  # shown as text ...
    assert doc.find_all("img") == [] and doc.find_all("script") == []  # ... never as markup
    assert applied.one(cls="result").text == "applied"
    assert "removed sinks: old" in applied.one(cls="changes").text
    assert len(applied.one(cls="hash").text) == 16
