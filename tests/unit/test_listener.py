"""listener: a listening socket, or one line saying why not and what to do."""

from __future__ import annotations

import socket

import pytest

from router.errors import ListenError
from router.listener import listen


def test_listen_binds_a_listening_socket():
    sockets = listen("127.0.0.1:0")
    (sock,) = sockets.insecure_sockets
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        with socket.create_connection((host, port), timeout=5):
            pass  # accepted by the kernel: the socket listens before any worker starts
    finally:
        sock.close()


def test_a_port_in_use_is_one_line_saying_what_to_do():
    taken = listen("127.0.0.1:0").insecure_sockets[0]
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            listen(f"127.0.0.1:{port}")
    finally:
        taken.close()
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{port}: address already in use (another router or "
        "program is using it; pick another with --bind)"
    )


def test_an_unknown_host_is_named():
    with pytest.raises(
        ListenError, match=r"^cannot listen on no-such-host\.invalid:80: unknown host"
    ):
        listen("no-such-host.invalid:80")


def test_the_option_to_change_is_named(tmp_path):
    taken = listen("127.0.0.1:0").insecure_sockets[0]
    try:
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=r"pick another with admin\.bind\)$"):
            listen(f"127.0.0.1:{port}", option="admin.bind")
    finally:
        taken.close()


def test_a_unix_socket_listens(tmp_path):
    path = tmp_path / "admin.sock"
    (sock,) = listen(f"unix:{path}").insecure_sockets
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        sock.close()
