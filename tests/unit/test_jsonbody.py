"""The nesting bound on client JSON: the byte-level shortcut agrees with an exact walk."""

from __future__ import annotations

from unittest.mock import patch

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import jsonbody
from router.errors import BadRequest, NestingTooDeep
from router.jsonbody import depth_exceeds, loads

#: Strings made to fool a byte-level look: brackets, quotes and backslashes.
tricky = st.text(alphabet='[]{}"\\ab', max_size=6)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | tricky
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky, inner, max_size=4),
    max_leaves=60,
)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(documents, st.integers(min_value=1, max_value=12))
def test_agrees_with_the_exact_depth(document, max_depth):
    body = orjson.dumps(document)
    expected = depth(document) > max_depth
    assert depth_exceeds(body, document, max_depth) == expected
    # And without the bracket count, as for bodies too large for it.
    with patch.object(jsonbody, "SMALL_BODY", 0):
        assert depth_exceeds(body, document, max_depth) == expected


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 128, 1000])
def test_nested_arrays_at_and_beyond_the_bound(n):
    body = b"[" * n + b"]" * n
    if n <= 64:
        assert loads(body, 64) == orjson.loads(body)
    else:
        with pytest.raises(NestingTooDeep, match=r"more than 64 levels deep"):
            loads(body, 64)


def test_strings_that_close_brackets_do_not_hide_depth():
    # Each "]" in a string would cancel a real "[" if strings were not cut out.
    inner = b'["]",' * 70 + b"0" + b"]" * 70
    assert depth(orjson.loads(inner)) == 70
    with pytest.raises(NestingTooDeep):
        loads(inner, 64)


def test_empty_and_invalid_bodies_are_bad_requests():
    with pytest.raises(BadRequest, match="empty"):
        loads(b"", 64)
    with pytest.raises(BadRequest, match="not valid JSON"):
        loads(b"\xef\xbb\xbf{}", 64)
