"""``server.workers > 1``: several daemon processes sharing one listening socket.

The same supervisor runs the pair of ``server.delivery: process``: worker 0
ingests, worker 1 delivers the ``buffer: disk`` sinks from the spool they
share (:mod:`router.roles`); both in ``data_dir``.

The parent binds the socket, holds the data directory's lock and supervises;
each worker is a complete daemon (ingest, spool, delivery) that owns
``<data_dir>/worker-<i>``. The kernel spreads connections across the
workers. A worker that exits unexpectedly is restarted; SIGTERM/SIGINT are
passed on to every worker, and the parent exits once they all have. SIGHUP
is passed on too: every worker reloads the config.

A worker also drains the spool directories of workers that no longer exist
(``worker-<j>`` with ``j >= N``, taken by worker ``j % N``), so lowering
``workers`` loses nothing.

A worker that cannot start for a reason the user must fix (a RouterError:
a damaged spool, a full disk, a plugin failing to open…) is not restarted:
it sends its one-line message to the supervisor and exits 2; the supervisor
stops the other workers, prints that line once and exits 2, as a single
process would.

The admin listener is one for the group: the parent binds ``admin.bind``
once and every worker serves it, each also on a private unix socket
(``<data_dir>/worker-<i>/admin.sock``, or a short temporary path when that is
too long). A worker that takes an admin request, or a ``/metrics`` scrape
on the ingest port, answers for the whole group by asking every worker's
private socket (:mod:`router.workergroup`): metrics add up, a reload is
every worker's. Once every worker is ready the parent logs
``workers.ready`` with the ingest and admin addresses.

Limitation: inbound rate limits are per worker unless their backend is Redis.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import shutil
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import structlog
from hypercorn.utils import repr_socket_addr

from router.config import RouterConfig
from router.errors import ConfigError, RouterError
from router.listener import listen
from router.loader import Overrides, apply_overrides, load
from router.roles import Role, roles_of
from router.storage import lock_data_dir
from router.workergroup import GroupSockets, private_socket_paths

__all__ = ["adopted_dirs", "run_workers", "worker_dir"]

log = structlog.get_logger()

#: A worker that dies sooner than this after starting is not restarted at once.
RESTART_BACKOFF = 1.0
#: A worker's exit code for an error the user must fix: not restarted (as ``router run``).
EXIT_STARTUP = 2


def worker_dir(data_dir: Path, index: int) -> Path:
    return data_dir / f"worker-{index}"


def adopted_dirs(data_dir: Path, index: int, workers: int) -> list[Path]:
    """Spool directories left by another ``workers`` setting that this process must drain.

    A single process (``workers == 1``) drains every ``worker-<j>``; worker
    ``index`` of ``N`` drains ``worker-<j>`` for ``j >= N`` with ``j % N == index``,
    and worker 0 also drains the spool a single process left in ``data_dir``.
    """
    found = []
    if workers > 1 and index == 0 and (data_dir / "spool.db").exists():
        found.append(data_dir)
    for path in sorted(data_dir.glob("worker-*")):
        try:
            j = int(path.name.removeprefix("worker-"))
        except ValueError:
            continue
        mine = workers == 1 or (j >= workers and j % workers == index)
        if mine and (path / "spool.db").exists():
            found.append(path)
    return found


def _detach_from_terminal_signals() -> None:
    """Take signals from the supervisor only, and die with it.

    In its own process group a worker does not also get the terminal's
    SIGINT, which would count as a second signal and force a hurried stop;
    PR_SET_PDEATHSIG ends it if the supervisor is killed with SIGKILL.
    """
    os.setpgrp()
    # A reload asked for before the daemon listens for it must not kill the worker.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: the worker just outlives a killed parent
        pass


def _worker_main(
    config_path: str,
    overrides: Overrides,
    index: int,
    sockets: Any,
    errors: Any,
    watch: bool = False,
    group: GroupSockets | None = None,
    ready: Any = None,
    role: Role = "all",
) -> None:
    """The entry point of one worker process (spawned: it rebuilds everything).

    A RouterError is sent to the supervisor as the line(s) ``router run``
    would print, and the worker exits with :data:`EXIT_STARTUP`. Once
    serving, the worker puts its index on ``ready``.
    """
    _detach_from_terminal_signals()
    try:
        _serve_worker(config_path, overrides, index, sockets, watch, group, ready, role)
    except ConfigError as exc:
        errors.put(str(exc))
        sys.exit(EXIT_STARTUP)
    except RouterError as exc:
        errors.put(f"router: error: {exc}")
        sys.exit(EXIT_STARTUP)


def _serve_worker(
    config_path: str,
    overrides: Overrides,
    index: int,
    sockets: Any,
    watch: bool,
    group: GroupSockets | None = None,
    ready: Any = None,
    role: Role = "all",
) -> None:
    import trio

    from router.daemon import serve
    from router.gcpolicy import tune_for_serving
    from router.loader import config_reader
    from router.log import configure_logging, redact_std_streams

    config, registry = load(config_path)
    config = apply_overrides(config, overrides)
    server = config.server
    redact_std_streams(config.secrets)
    configure_logging(config.logging.level, config.logging.format, secrets=config.secrets)
    structlog.contextvars.bind_contextvars(worker=index)
    if role == "all":
        data_dir = worker_dir(server.data_dir, index)
        drain = adopted_dirs(server.data_dir, index, server.workers)
    else:  # the pair of server.delivery: process share the data dir; delivery drains
        structlog.contextvars.bind_contextvars(role=role)
        data_dir = server.data_dir
        drain = adopted_dirs(server.data_dir, 0, 1) if role == "delivery" else []
    tune_for_serving()
    trio.run(
        lambda: serve(
            config,
            registry,
            # Not a nursery's: a startup error must reach _worker_main as itself.
            task_status=_Ready(ready, index),
            handle_signals=True,
            data_dir=data_dir,
            sockets=sockets,
            worker=index,
            drain=drain,
            read_config=config_reader(config_path, overrides),
            watch=watch,
            group=group,
            role=role,
        )
    )


class _Ready:
    """The ``task_status`` of a worker's daemon: serving, it puts its index on ``queue``."""

    def __init__(self, queue: Any, index: int):
        self.queue = queue
        self.index = index

    def started(self, value: Any = None) -> None:
        if self.queue is not None:
            self.queue.put(self.index)


def _listen_private(paths: list[Path]) -> list[Any]:
    """Each worker's private admin socket, listening; only this user may connect."""
    found = []
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        found.append(listen(f"unix:{path}", option="--data-dir"))
        os.chmod(path, 0o600)
    return found


def _remove_private(paths: list[Path], made: Path | None) -> None:
    for path in paths:
        with suppress(FileNotFoundError):
            path.unlink()
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


def _admin_url(bind: str, sockets: Any) -> str | None:
    if sockets is None:
        return None
    if bind.startswith("unix:"):
        return bind
    sock = sockets.insecure_sockets[0]
    return f"http://{repr_socket_addr(sock.family, sock.getsockname())}"


def run_workers(config_path: str, config: RouterConfig, *, watch: bool = False) -> int:
    """Run ``config.server.workers`` worker processes until SIGTERM/SIGINT; the exit code.

    With ``server.delivery: process``, two: worker 0 ingests, worker 1
    delivers the ``buffer: disk`` sinks (:mod:`router.roles`), both in
    ``data_dir``. SIGHUP is passed on to every worker: each reloads its
    config and logs the result with its ``worker`` index. With ``watch``,
    each worker watches the file.
    """
    server = config.server
    roles = roles_of(config)
    count = len(roles)
    pair = "all" not in roles
    sockets = listen(server.bind)
    admin_sockets = None
    if config.admin.enabled:
        admin_sockets = listen(config.admin.bind, option="admin.bind or --admin-bind")
    overrides = {
        "server": {"bind": server.bind, "workers": server.workers, "data_dir": server.data_dir},
        "admin": {"bind": config.admin.bind},
    }
    context = multiprocessing.get_context("spawn")
    errors = context.SimpleQueue()
    ready = context.SimpleQueue()
    stopping = False
    fatal: str | None = None

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for process in processes.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    def reload(signum: int, frame: Any) -> None:
        for process in processes.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    def start(index: int) -> multiprocessing.process.BaseProcess:
        group = GroupSockets(index, paths, private[index], admin_sockets)
        role = roles[index]
        process = context.Process(
            target=_worker_main,
            name=f"router-{role}" if pair else f"router-worker-{index}",
            args=(
                config_path,
                overrides,
                index,
                None if role == "delivery" else sockets,
                errors,
                watch,
                group,
                ready,
                role,
            ),
        )
        process.start()
        started[index] = time.monotonic()
        return process

    failed = False
    with lock_data_dir(server.data_dir):
        # Bound here, so a restarted worker gets the same one and peers queue meanwhile.
        private_paths, made = private_socket_paths(server.data_dir, count)
        paths = tuple(str(p) for p in private_paths)
        try:
            private = _listen_private(private_paths)
        except BaseException:
            _remove_private(private_paths, made)
            raise
        started: dict[int, float] = {}
        processes = {i: start(i) for i in range(count)}
        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
        binds = [
            f"http://{s.getsockname()[0]}:{s.getsockname()[1]}" for s in sockets.insecure_sockets
        ]
        admin_url = _admin_url(config.admin.bind, admin_sockets)
        log.info(
            "workers.started",
            workers=count,
            roles=list(roles) if pair else None,
            binds=binds,
            admin=admin_url,
            pids=[p.pid for p in processes.values()],
        )
        serving: set[int] = set()
        try:
            while processes:
                while not ready.empty():  # a restarted worker says so again: once is enough
                    index = ready.get()
                    if index not in serving:
                        serving.add(index)
                        if len(serving) == count:
                            log.info(
                                "workers.ready",
                                workers=count,
                                binds=binds,
                                admin=admin_url,
                            )
                for index, process in list(processes.items()):
                    process.join(timeout=0.2)
                    if process.exitcode is None:
                        continue
                    if stopping:
                        # Killed by the SIGTERM itself: the worker was still starting
                        # (no handler yet), so it had accepted nothing. A clean stop.
                        failed |= process.exitcode not in (0, -signal.SIGTERM)
                        del processes[index]
                        continue
                    if process.exitcode == EXIT_STARTUP and not errors.empty():
                        # The same error would stop it again: stop them all, say it once.
                        fatal = errors.get()
                        del processes[index]
                        stop(signal.SIGTERM, None)
                        continue
                    log.error("workers.worker_exited", worker=index, exitcode=process.exitcode)
                    time.sleep(max(0.0, RESTART_BACKOFF - (time.monotonic() - started[index])))
                    processes[index] = start(index)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            _remove_private(private_paths, made)
    log.info("workers.stopped", failed=failed or fatal is not None)
    if fatal is not None:
        print(fatal, file=sys.stderr)
        return EXIT_STARTUP
    return 1 if failed else 0
