"""Binding a listening socket, with one line saying why not and what to do."""

from __future__ import annotations

import errno
import socket
from typing import Any

import hypercorn.config

from router.errors import ListenError

__all__ = ["listen"]

_WHY_NOT = {
    errno.EADDRINUSE: "address already in use (another router or program is using it; "
    "pick another with {option})",
    errno.EADDRNOTAVAIL: "address not available (not an address of this machine; "
    "use 127.0.0.1 or 0.0.0.0)",
    errno.EACCES: "permission denied (ports below 1024 need privileges; "
    "pick another with {option})",
}


def listen(bind: str, option: str = "--bind") -> Any:
    """Bound, listening hypercorn ``Sockets`` for ``HOST:PORT`` (or ``unix:PATH``).

    ``option`` is what the user would change to pick another address.

    :raises ListenError: saying why not (port in use, unknown host…) and what to do.
    """
    hc = hypercorn.config.Config()
    hc.bind = [bind]
    try:
        sockets = hc.create_sockets()
        for sock in sockets.insecure_sockets:
            sock.listen(hc.backlog)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {bind}: unknown host ({exc.strerror})") from exc
    except OSError as exc:
        why = _WHY_NOT.get(exc.errno, exc.strerror or str(exc)).format(option=option)
        raise ListenError(f"cannot listen on {bind}: {why}") from exc
    return sockets
