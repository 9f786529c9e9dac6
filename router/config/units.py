"""The config's units: durations, sizes and ``HOST:PORT`` addresses."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

__all__ = ["parse_bind", "parse_duration", "parse_size"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "KiB": 2**10,
    "MB": 10**6,
    "MiB": 2**20,
    "GB": 10**9,
    "GiB": 2**30,
}


def parse_duration(value: Any) -> float:
    """Seconds from ``2.5``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 2.5, 500ms, 30s, 5m, 1h)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_size(value: Any) -> int:
    """Bytes from ``1048576``, ``"512KiB"``, ``"1MiB"``, ``"2GB"``…"""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 1048576, 512KiB, 1MiB, 2GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def parse_bind(value: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT``: an IPv4 address, a host name or ``[IPv6]``.

    :raises ValueError: saying what a valid address looks like.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} of {value!r} is not a number from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host} in {value!r} is not an IPv6 address") from None
        return host[1:-1], int(port)
    if ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
    if not _HOSTNAME.match(host):
        raise ValueError(f"{host!r} in {value!r} is not an IP address or host name")
    return host, int(port)
