"""The ingest ceiling: a bare hypercorn-trio ASGI app that parses the JSON body and answers 201.

Nothing else: no routing, validation, spool. What the daemon can do per
request on this stack is measured against this, in the same run.

    python -m bench.ceiling --port 0     # prints READY http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import signal

import hypercorn.config
import hypercorn.trio
import orjson
import trio

BODY = b'{"ok":true}'


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    orjson.loads(b"".join(chunks))
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


async def serve(port: int) -> None:
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()

    async def on_signal() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                stop.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(on_signal)
        binds = await nursery.start(
            lambda task_status: hypercorn.trio.serve(
                app, config, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        print(f"READY {binds[0]}", flush=True)
        await stop.wait()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    trio.run(serve, parser.parse_args().port)
