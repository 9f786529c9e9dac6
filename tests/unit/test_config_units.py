"""Durations, sizes and ``HOST:PORT`` addresses."""

from __future__ import annotations

import pytest

from router.config.units import parse_bind, parse_duration, parse_size


def test_units():
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120
    assert parse_duration(3) == 3.0
    assert parse_size("1KiB") == 1024
    assert parse_size("2MB") == 2_000_000
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_booleans_are_neither_durations_nor_sizes():
    with pytest.raises(ValueError):
        parse_duration(True)
    with pytest.raises(ValueError):
        parse_size(False)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("router.internal:9000", ("router.internal", 9000)),
    ],
)
def test_bind(value, parsed):
    assert parse_bind(value) == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8080", "is not HOST:PORT"),
        ("127.0.0.1:99999", "is not a number from 0 to 65535"),
        ("::1:80", "write an IPv6 address in brackets"),
        ("[nope]:80", "is not an IPv6 address"),
        ("bad_host!:80", "is not an IP address or host name"),
    ],
)
def test_bad_bind_says_what_a_valid_one_looks_like(value, message):
    with pytest.raises(ValueError, match=message):
        parse_bind(value)
