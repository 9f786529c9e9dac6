"""statuspage: a snapshot as HTML, every value escaped, and the page of a real admin listener."""

from __future__ import annotations

import httpx
import yaml

from router.admin import PAGE_COOKIE, page_cookie
from router.statuspage import render, render_login
from router.testing.daemon import running_daemon
from tests.helpers.dom import parse

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def snap(**over):
    base = {
        "version": "1.2.3",
        "time": 1_700_000_000.0,
        "uptime_seconds": 75.0,
        "workers": [0],
        "status": "degraded",
        "ready": True,
        "sources": {
            "in": {
                "plugin": "sample",
                "requests_per_s": 12.5,
                "events_per_s": 40.0,
                "rejects_per_s": 0.0,
                "p99_seconds": 0.005,
                "events_accepted": 400.0,
                "events_rejected": 3.0,
                "rate_limit": {"rate": 10, "burst": 20, "unit": "s", "backend": "memory"},
            }
        },
        "sinks": {
            "good": {
                "plugin": "sample",
                "buffer": "disk",
                "delivered_per_s": 39.0,
                "delivered": 390.0,
                "pending": 2,
                "failing_for": 0.0,
                "last_error": None,
                "dead_letters_stored": 0,
                "oldest_age_seconds": 0.02,
            },
            "bad": {
                "plugin": "sample",
                "buffer": "disk",
                "delivered_per_s": 0.0,
                "delivered": 0.0,
                "pending": 17,
                "failing_for": 4.5,
                "last_error": f"upstream answered 503: {MARKUP}",
                "dead_letters_stored": 5,
                "dead_lettered": 5.0,
            },
        },
        "routes": [
            {"from": ["in"], "to": ["good", "bad"], "types": ["view"], "match": None},
        ],
        "orphaned": {"gone": 9},
        "storage_errors": [],
        "reloads": [
            {
                "at": 1_699_999_000.0,
                "trigger": "api",
                "result": "applied",
                "config_hash": "ab12",
                "changes": {"added": {"sinks": ["bad"]}, "restart_required": []},
                "problems": [],
            },
            {
                "at": 1_699_999_500.0,
                "trigger": "signal",
                "result": "rejected",
                "config_hash": "cd34",
                "changes": None,
                "problems": [f"sinks.x.plugin: {MARKUP}"],
            },
        ],
        "quarantined": 7,
    }
    base.update(over)
    return base


def test_the_page_shows_each_section_by_its_id():
    doc = parse(render(snap()))
    assert doc.one("meta", http_equiv="refresh").attrs["content"] == "2"
    assert doc.by_id("summary").attrs["data-status"] == "degraded"
    route = doc.by_id("topology").one("tr", cls="route")
    assert [s.text for s in route.find_all(cls="source")] == ["in"]
    assert [s.attrs["data-sink"] for s in route.find_all(cls="sink")] == ["good", "bad"]
    assert route.one(cls="sink", data_sink="bad").classes == {"sink", "failing"}
    assert "types: view" in route.one(cls="filter").text
    source = doc.by_id("sources").one("tr", data_source="in")
    assert source.one(cls="events-per-s").text == "40.0"
    assert source.one(cls="p99").text == "≤ 5 ms"
    sinks = doc.by_id("sinks")
    assert "failing" not in sinks.one("tr", data_sink="good").classes
    bad = sinks.one("tr", data_sink="bad")
    assert "failing" in bad.classes and bad.one(cls="state").text == "failing for 4.5 s"
    assert bad.one(cls="pending").text == "17"
    assert sinks.one("tr", data_sink="good").one(cls="oldest-age").text == "20 ms"
    assert bad.one(cls="oldest-age").text == "-"
    stored = doc.by_id("stored")
    assert stored.one("tr", data_sink="bad").one(cls="dead-letters").text == "5"
    assert stored.one(id="quarantined").one(cls="count").text == "7"
    assert doc.by_id("orphaned").one("tr", data_sink="gone").one(cls="pending").text == "9"
    reloads = doc.by_id("reloads").find_all("tr", cls="reload")
    assert [r.one(cls="result").text for r in reloads] == ["rejected", "applied"]  # newest first
    assert reloads[1].one(cls="changes").text == "added sinks: bad"
    assert reloads[1].one(cls="hash").text == "ab12"


def test_markup_in_any_value_is_shown_as_text():
    doc = parse(render(snap()))
    assert doc.find_all("script") == [] and doc.find_all("img") == []
    bad = doc.by_id("sinks").one("tr", data_sink="bad")
    assert bad.one(cls="last-error").text == f"upstream answered 503: {MARKUP}"
    problems = doc.by_id("reloads").find_all("tr", cls="reload")[0].one(cls="problems")
    assert problems.text == f"sinks.x.plugin: {MARKUP}"
    # Names and attribute values too: a quote cannot end the attribute.
    odd = '"><script>x</script>'
    page = render(snap(orphaned={odd: 1}, status=odd))
    doc = parse(page)
    assert doc.find_all("script") == []
    assert doc.by_id("orphaned").one("tr", cls="orphan").attrs["data-sink"] == odd
    assert doc.by_id("summary").attrs["data-status"] == odd


def test_a_starting_router_and_parts_without_stats_still_render():
    starting = {"status": "starting", "sources": {}, "sinks": {}, "routes": [], "reloads": []}
    doc = parse(render(starting))
    assert "starting" in doc.by_id("topology").text
    assert doc.by_id("stored").one(id="quarantined").one(cls="count").text == "-"
    bare = snap(sinks={"new": {}}, sources={"in": {}}, orphaned=None, reloads=[{}])
    doc = parse(render(bare))
    row = doc.by_id("sinks").one("tr", data_sink="new")
    assert row.one(cls="state").text == "ok" and row.one(cls="pending").text == "-"
    assert row.find_all(cls="oldest-age") == []  # no queue reports it: no column
    assert doc.by_id("sources").one("tr", data_source="in").one(cls="p99").text == "-"
    assert parse(render({})).by_id("summary").attrs["data-status"] == "unknown"


def test_unrouted_parts_are_listed_apart():
    doc = parse(render(snap(routes=[])))
    row = doc.by_id("topology").one("tr", cls="unrouted")
    assert [s.attrs["data-sink"] for s in row.find_all(cls="sink")] == ["good", "bad"]
    assert [s.text for s in row.find_all(cls="source")] == ["in"]


def test_the_login_page_escapes_its_message_and_asks_for_the_token():
    doc = parse(render_login(MARKUP))
    assert doc.find_all("script") == [] and doc.by_id("login-message").text == MARKUP
    assert doc.by_id("login").one("input").attrs["name"] == "token"
    assert doc.find_all("meta", http_equiv="refresh") == []


TOKEN = "page-token-3c9e1"


async def test_the_admin_listener_serves_the_page_behind_its_token(tmp_path, sample, sample_config):
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump({**sample_config, "admin": {"token": TOKEN}}))
    async with (
        running_daemon(path, data_dir=tmp_path / "d", plugins=sample) as rd,
        httpx.AsyncClient(base_url=rd.admin_url) as admin,
    ):
        r = await admin.get("/")
        assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
        assert parse(r.text).by_id("login")
        wrong = await admin.get("/", params={"token": "nope"})
        assert wrong.status_code == 401 and "not the admin token" in wrong.text
        given = await admin.get("/", params={"token": TOKEN})
        assert (given.status_code, given.headers["location"]) == (303, "/")
        cookie = given.cookies[PAGE_COOKIE]
        assert cookie == page_cookie(TOKEN) and TOKEN not in cookie
        assert "HttpOnly" in given.headers["set-cookie"]
        assert "SameSite=Strict" in given.headers["set-cookie"]
        admin.cookies.clear()  # sent by hand below, so each request says what it carries
        jar = {"Cookie": f"{PAGE_COOKIE}={cookie}"}
        for page_path in ("/", "/status"):
            r = await admin.get(page_path, headers=jar)
            assert r.status_code == 200, r.text
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["cache-control"] == "no-store"
            doc = parse(r.text)
            assert doc.by_id("sinks").one("tr", data_sink="out")
            assert doc.by_id("stored").one(id="quarantined").one(cls="count").text == "0"
        # The cookie opens the page only; the API still needs the bearer token.
        for method, api in [("GET", "/admin/status"), ("POST", "/admin/reload")]:
            r = await admin.request(method, api, headers=jar)
            assert r.status_code == 401, api
        r = await admin.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        # A new token voids the old cookie.
        path.write_text(yaml.safe_dump({**sample_config, "admin": {"token": "other-token-77"}}))
        reload = await admin.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert reload.json()["result"] == "applied"
        assert (await admin.get("/", headers=jar)).status_code == 401
