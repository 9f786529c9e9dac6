"""The HTTP server: hypercorn's protocol code and per-connection timeouts, under a connection cap.

Why not ``hypercorn.trio.worker_serve``: it accepts every connection it is
offered, so a few thousand slow clients hold a few thousand tasks and
buffers. This is the same server loop (lifespan, listeners, graceful
shutdown) with one change: at most ``max_connections`` connections are open
at once. Beyond that the router stops accepting, and new connections wait
in the kernel's listen backlog (``hypercorn.config.Config.backlog``) until
one closes; when the backlog is full too, the kernel refuses them.

Everything else is hypercorn's own: ``keep_alive_timeout`` closes a
connection that has no complete request head for that long (idle between
requests, or sending its headers slowly), ``h11_max_incomplete_size`` caps
a request head that arrives in pieces (431 beyond). What hypercorn lacks is
the ASGI app's (:mod:`router.fastpath`): the body timeout, and the same cap
on a head that arrived whole.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import hypercorn.config
import structlog
import trio
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr

if TYPE_CHECKING:
    from router.config import ServerConfig

__all__ = ["hypercorn_config", "serve_http"]

log = structlog.get_logger()

#: accept() errors that mean "out of file descriptors or memory": wait, then retry.
ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
#: How long to wait before accepting again after one of those.
ACCEPT_RETRY = 0.1
#: At most one ``http.connection_limit_reached`` warning in this many seconds.
LIMIT_WARNING_EVERY = 10.0


class _Connection(TCPServer):
    """hypercorn's connection handler, which also stops its idle timer once the client has gone.

    Without this a keep-alive connection the client closed lived on (and held
    its slot under ``max_connections``) until ``keep_alive_timeout`` ran out.
    """

    async def _read_data(self) -> None:
        try:
            await super()._read_data()
        finally:
            await self.idle_task.stop()


def hypercorn_config(server: ServerConfig) -> hypercorn.config.Config:
    """hypercorn's settings from the ``server`` section."""
    hc = hypercorn.config.Config()
    hc.bind = [server.bind]
    hc.graceful_timeout = server.shutdown_timeout
    hc.accesslog = "-" if server.access_log else None
    # Through the root handler (JSON, redacted): an exception that escapes the
    # application is logged, not dropped. Its level is set by configure_logging.
    hc.errorlog = logging.getLogger("hypercorn.error")
    # hypercorn's idle timer runs until a request's head is complete, so it
    # is the header timeout too. Its read_timeout is left off: it limits
    # each read, so it would never stop a client sending a byte a second,
    # and it would cut a client waiting for its answer.
    hc.keep_alive_timeout = server.keepalive_timeout
    hc.h11_max_incomplete_size = server.max_header_bytes
    hc.h2_max_header_list_size = server.max_header_bytes
    return hc


async def serve_http(
    app: Any,
    config: hypercorn.config.Config,
    *,
    max_connections: int,
    sockets: hypercorn.config.Sockets | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` (wrapped by ``hypercorn.utils.wrap_app``) on plain TCP until shut down.

    Reports the bound URLs through ``task_status``. On ``shutdown_trigger``
    it stops accepting and gives open connections ``config.graceful_timeout``.
    """
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(app, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            if sockets is None:
                sockets = config.create_sockets()
                for sock in sockets.insecure_sockets:
                    sock.listen(config.backlog)
            listeners = []
            binds = []
            for sock in sockets.insecure_sockets:
                listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            handler = partial(
                _Connection, app, config, context, ConnectionState(lifespan_state.copy())
            )
            slots = trio.Semaphore(max_connections)
            task_status.started(binds)
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    if shutdown_trigger is not None:
                        nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    for listener in listeners:
                        nursery.start_soon(_accept, listener, handler, slots, server_nursery)
                    await trio.sleep_forever()
            except BaseExceptionGroup as error:
                _, other_errors = error.split((ShutdownError, KeyboardInterrupt))
                if other_errors is not None:
                    raise other_errors from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


async def _accept(
    listener: trio.SocketListener,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    slots: trio.Semaphore,
    nursery: trio.Nursery,
) -> None:
    """Accept while a slot is free; a connection gives its slot back when it closes.

    The listener is closed when this returns, so that a shutting-down server
    refuses new connections.
    """
    async with listener:
        warned_at = -LIMIT_WARNING_EVERY
        max_connections = slots.value
        while True:
            await slots.acquire()
            accepted = False
            try:
                stream = await listener.accept()
                accepted = True
            except OSError as exc:
                if exc.errno not in ACCEPT_CAPACITY_ERRNOS:
                    raise
                log.error(
                    "http.accept_failed", error=errno.errorcode[exc.errno], retry_in=ACCEPT_RETRY
                )
                await trio.sleep(ACCEPT_RETRY)
            finally:
                if not accepted:
                    slots.release()
            if not accepted:
                continue
            if slots.value == 0 and trio.current_time() - warned_at >= LIMIT_WARNING_EVERY:
                warned_at = trio.current_time()
                log.warning(
                    "http.connection_limit_reached",
                    max_connections=max_connections,
                    message="new connections wait in the listen backlog (server.max_connections)",
                )
            nursery.start_soon(_connection, handler, stream, slots)


async def _connection(
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    stream: trio.SocketStream,
    slots: trio.Semaphore,
) -> None:
    try:
        await handler(stream)
    finally:
        try:
            await trio.aclose_forcefully(stream)
        finally:
            slots.release()
