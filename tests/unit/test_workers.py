"""workers: the shared listening socket, worker directories, and who drains which spool."""

from __future__ import annotations

import socket

import pytest

from router.errors import ListenError
from router.workers import adopted_dirs, listen, worker_dir


def spools(data_dir, *names: str) -> None:
    for name in names:
        path = data_dir / name if name else data_dir
        path.mkdir(parents=True, exist_ok=True)
        (path / "spool.db").write_bytes(b"")


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


def test_each_worker_has_its_own_directory(tmp_path):
    assert worker_dir(tmp_path, 3) == tmp_path / "worker-3"


def test_fewer_workers_drain_the_spools_of_the_missing_ones(tmp_path):
    spools(tmp_path, "", "worker-0", "worker-1", "worker-2", "worker-3", "worker-4")
    # Two workers: worker-2 and worker-4 go to 0, worker-3 to 1; 0 also takes the single spool.
    assert adopted_dirs(tmp_path, 0, 2) == [tmp_path, tmp_path / "worker-2", tmp_path / "worker-4"]
    assert adopted_dirs(tmp_path, 1, 2) == [tmp_path / "worker-3"]


def test_a_single_process_drains_every_worker_spool(tmp_path):
    spools(tmp_path, "", "worker-0", "worker-1")
    assert adopted_dirs(tmp_path, 0, 1) == [tmp_path / "worker-0", tmp_path / "worker-1"]


def test_directories_without_a_spool_or_with_another_name_are_left_alone(tmp_path):
    spools(tmp_path, "worker-5")
    (tmp_path / "worker-7").mkdir()
    spools(tmp_path, "worker-x")
    assert adopted_dirs(tmp_path, 1, 2) == [tmp_path / "worker-5"]
    assert adopted_dirs(tmp_path, 0, 2) == []
