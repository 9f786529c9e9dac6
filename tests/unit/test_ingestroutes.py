"""router.ingestroutes: the (method, path) table ingest requests are dispatched with."""

from __future__ import annotations

from router.ingestroutes import IngestRoutes, compile_path

# The table only stores what it is given: names stand in for source runtimes.
A, B = "runtime-a", "runtime-b"


def table():
    t = IngestRoutes()
    t.add("POST", "/a/events", A, "ingest")
    t.add("POST", "/b/<platform>/events", B, "platform")
    t.add_known("GET", "/b/status", B)
    return t


def test_a_static_route_matches_its_method_and_path_only():
    t = table()
    assert t.match("POST", "/a/events") == (A, "ingest", {})
    assert t.match("PUT", "/a/events") is None
    assert t.match("POST", "/a/events/") is None


def test_a_variable_matches_one_segment_and_is_returned():
    t = table()
    assert t.match("POST", "/b/ios/events") == (B, "platform", {"platform": "ios"})
    assert t.match("POST", "/b/ios/x/events") is None
    assert t.match("POST", "/b//events") is None


def test_a_query_route_is_known_but_not_dispatched():
    t = table()
    assert t.match("GET", "/b/status") is None
    assert t.allowed("/b/status") == (B, {"GET", "HEAD"})


def test_allowed_lists_every_method_on_a_path_for_405s():
    t = table()
    t.add("PUT", "/a/events", A, "replace")
    assert t.allowed("/a/events") == (A, {"POST", "PUT"})
    assert t.allowed("/b/android/events") == (B, {"POST"})
    assert t.allowed("/nowhere") is None


def test_source_of_finds_the_source_whatever_the_method():
    t = table()
    assert t.source_of("/a/events") == A and t.source_of("/b/web/events") == B
    assert t.source_of("/b/status") is None  # not an ingest route


def test_compile_path_escapes_everything_but_variables():
    pattern = compile_path("/v1.0/<int:id>/x+y")
    assert pattern.match("/v1.0/42/x+y").groupdict() == {"id": "42"}
    assert pattern.match("/v1x0/42/x+y") is None
    assert pattern.match("/v1.0/42/x+y/more") is None
