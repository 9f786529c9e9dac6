"""workers: worker directories, and who drains which spool."""

from __future__ import annotations

from router.workers import adopted_dirs, worker_dir


def spools(data_dir, *names: str) -> None:
    for name in names:
        path = data_dir / name if name else data_dir
        path.mkdir(parents=True, exist_ok=True)
        (path / "spool.db").write_bytes(b"")


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
