"""Testing against a real Redis: a key prefix per test, and a redis-server of one's own.

``REDIS_URL`` is the shared server of the suite (``ROUTER_TEST_REDIS``,
default ``redis://127.0.0.1:6379/0``); tests that need Redis are marked
``@pytest.mark.redis`` and fail, never skip, when it is down. Each test uses
its own ``redis_prefix`` (a fixture of the ``router`` pytest plugin) and its
keys are deleted afterwards, so tests run in parallel on one server.

:class:`RedisServer` starts a private ``redis-server`` (AOF, fsync always)
for tests that kill and restart Redis, which must never be the shared one.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import trio

__all__ = [
    "REDIS_URL",
    "RedisServer",
    "delete_prefix",
    "new_prefix",
    "open_test_link",
    "redis_cluster",
    "redis_sentinel",
]

REDIS_URL = os.environ.get("ROUTER_TEST_REDIS", "redis://127.0.0.1:6379/0")


def new_prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:8]}"


async def delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete every key of ``prefix`` (``{<prefix>:…}…``); returns how many."""
    import coredis

    deleted = 0
    async with coredis.Redis.from_url(url) as client:
        batch = []
        async for key in client.scan_iter(match=f"{{{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(batch)
                batch = []
        if batch:
            deleted += await client.delete(batch)
    return deleted


@asynccontextmanager
async def open_test_link(
    prefix: str, *, url: str = REDIS_URL, consumer: str = "c1", **options: Any
):
    """A running :class:`~router.redisconn.RedisLink`; build queues on it before entering.

    Yields ``(link, start)``: create queues with ``RedisQueue(link, …)``,
    then ``await start()`` connects and opens them.
    """
    from router.config import RedisConfig
    from router.redisconn import RedisLink

    config = RedisConfig(url=url, prefix=prefix, **{"refresh_interval": 0.1, **options})
    link = RedisLink(config, consumer=consumer)
    async with trio.open_nursery() as nursery:

        async def start() -> None:
            await nursery.start(link.run)

        try:
            yield link, start
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(10):
                await link.close()
            nursery.cancel_scope.cancel()


def free_port(*, also: int | None = None) -> int:
    """A free loopback port; with ``also``, one whose ``port + also`` is free too."""
    while True:
        with socket.socket() as sock:
            if also is None:
                sock.bind(("127.0.0.1", 0))
                return sock.getsockname()[1]
            port = random.randrange(20_000, 65_535 - also)
            try:
                sock.bind(("127.0.0.1", port))
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port + also))
            except OSError:
                continue
            return port


class RedisServer:
    """A private ``redis-server`` on a free loopback port, with an append-only file.

    ``appendfsync always``: every write Redis acknowledged is on disk, so a
    SIGKILL and a restart on the same directory lose nothing acknowledged.
    """

    def __init__(self, directory: Path | str, port: int | None = None, *, args: Sequence[str] = ()):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.args = list(args)
        self.process: trio.Process | None = None
        self.binary = shutil.which("redis-server") or "redis-server"

    async def start(self, *, within: float = 10) -> RedisServer:
        with (self.dir / "stderr.log").open("ab") as stderr:
            self.process = await self._spawn(stderr)
        with trio.fail_after(within):
            while not await self.ping():
                if self.process.returncode is not None:
                    log = "".join(
                        (self.dir / name).read_text(errors="replace")[-2000:]
                        for name in ("stderr.log", "redis.log")
                        if (self.dir / name).exists()
                    )
                    raise RuntimeError(f"redis-server exited:\n{log}")
                await trio.sleep(0.02)
        return self

    async def _spawn(self, stderr: Any) -> trio.Process:
        return await trio.lowlevel.open_process(
            [
                self.binary,
                *self.args,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--logfile", str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip

    async def ping(self) -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        except OSError:
            return False
        async with stream:
            try:
                await stream.send_all(b"PING\r\n")
                with trio.move_on_after(1):
                    return (await stream.receive_some(64)).startswith(b"+PONG")
            except trio.BrokenResourceError:
                return False
        return False

    def kill(self) -> None:
        """SIGKILL: Redis gets no chance to do anything."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def wait(self) -> None:
        if self.process is not None:
            await self.process.wait()

    async def stop(self) -> None:
        self.kill()
        await self.wait()

    @asynccontextmanager
    async def running(self):
        await self.start()
        try:
            yield self
        finally:
            with trio.CancelScope(shield=True):
                await self.stop()


@asynccontextmanager
async def redis_cluster(directory: Path | str, nodes: int = 3) -> AsyncIterator[str]:
    """A Redis Cluster of ``nodes`` primaries on loopback; yields its ``redis+cluster://`` URL."""
    directory = Path(directory)
    async with AsyncExitStack() as stack:
        servers = []
        for i in range(nodes):
            port = free_port(also=10_000)  # the cluster bus listens on port + 10000
            server = RedisServer(
                directory / f"node{i}",
                port,
                args=["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"],
            )
            servers.append(await stack.enter_async_context(server.running()))
        cli = shutil.which("redis-cli") or "redis-cli"
        await trio.run_process(
            [cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_stdout=True,
        )  # fmt: skip
        with trio.fail_after(15):
            for server in servers:
                while True:
                    done = await trio.run_process(
                        [cli, "-p", str(server.port), "cluster", "info"], capture_stdout=True
                    )
                    if b"cluster_state:ok" in done.stdout:
                        break
                    await trio.sleep(0.05)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in servers)


@asynccontextmanager
async def redis_sentinel(directory: Path | str, service: str = "primary") -> AsyncIterator[str]:
    """A primary watched by one Sentinel; yields its ``redis+sentinel://`` URL."""
    directory = Path(directory)
    async with RedisServer(directory / "primary").running() as primary:
        port = free_port()
        conf = directory / "sentinel.conf"
        conf.write_text(f"sentinel monitor {service} 127.0.0.1 {primary.port} 1\n")
        async with RedisServer(
            directory / "sentinel", port, args=[str(conf), "--sentinel"]
        ).running():
            yield f"redis+sentinel://127.0.0.1:{port}/{service}"
