"""Loopback ports for tests that need one nothing listens on."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A loopback port nothing listens on, for as long as the block runs.

    Bound with SO_REUSEADDR and never listening: a connection to it is
    refused, the kernel hands it to no other ``bind(0)`` meanwhile (a
    port bound and closed at once could go to the next test's server), and
    a daemon may still listen on it inside the block (hypercorn binds with
    SO_REUSEADDR too).
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port something listens on (and never answers), for as long as the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
