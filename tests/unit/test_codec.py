"""Codec: the base class every vendor's codec extends, and resolve_type."""

from __future__ import annotations

import pytest

from router import Codec, Event
from router.codec import resolve_type
from tests.helpers.third_plugin import ThirdCodec


@pytest.mark.parametrize(
    ("type_map", "type_", "custom", "expected"),
    [
        (None, "page_view", False, "VIEW"),
        ({"page_view": "CLICK"}, "page_view", False, "CLICK"),
        (None, "search", False, None),
        ({"*": "OTHER"}, "search", False, "OTHER"),
        ({"*": "OTHER"}, "page_view", False, "VIEW"),
        # Another vendor's custom type never takes a canonical default.
        (None, "purchase", True, None),
        ({"*": "OTHER"}, "purchase", True, "OTHER"),
        ({"purchase": "BUY2", "*": "OTHER"}, "purchase", True, "BUY2"),
    ],
)
def test_resolve_type_entry_then_default_then_catch_all(type_map, type_, custom, expected):
    options = {"type_map": type_map} if type_map is not None else {}
    assert ThirdCodec().resolve_type(type_, options, custom=custom) == expected


def test_resolve_type_prefers_a_codecs_own_default_to_the_table():
    codec = ThirdCodec()
    assert codec.resolve_type("page_view", {}, default="PAGE") == "PAGE"
    assert codec.resolve_type("page_view", {"type_map": {"page_view": "X"}}, default="P") == "X"
    assert resolve_type({"*": ""}, "a") is None


def test_a_codec_that_writes_nothing_says_so_and_never_claims_passthrough():
    class Bare(Codec):
        vendor = "bare"

    bare = Bare()
    assert bare.passthrough({}) is False
    with pytest.raises(NotImplementedError):
        bare.event_type({})
    with pytest.raises(NotImplementedError):
        bare.decode({}, id="e", received_at=1, meta={})
    event = Event(id="e", type="page_view", timestamp=1, received_at=1, vendor="x")
    with pytest.raises(NotImplementedError):
        bare.encode(event, {})
    # Without default_types a canonical type has no default of its own.
    assert bare.resolve_type("page_view", {}) is None


def test_an_empty_type_map_entry_means_no_entry():
    assert resolve_type({"a": ""}, "a") is None
    assert resolve_type({"a": "", "*": "ANY"}, "a") == "ANY"
    assert resolve_type({}, "a", default="D") == "D"
