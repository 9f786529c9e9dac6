"""A Trio HTTP/1.1 load generator, used when ``wrk`` is not installed.

Keep-alive connections on raw sockets with one pre-built request; responses
are parsed just enough (status line, Content-Length). Hand-written because
httpx's connection pool is itself slower than the servers measured here.
Prints one JSON line like ``wrk``'s summary: requests, non-2xx, rps, p50, p99 (ms).

    python -m bench.loadgen URL --path /collect/event --body FILE -c 32 -d 10
"""

from __future__ import annotations

import argparse
import time
from urllib.parse import urlsplit

import orjson
import trio


async def connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    stream = await trio.open_tcp_stream(host, port)
    buffer = b""
    async with stream:
        while trio.current_time() < deadline:
            sent = time.perf_counter()
            await stream.send_all(request)
            while b"\r\n\r\n" not in buffer:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[length:]
            latencies.append(time.perf_counter() - sent)
            statuses[status] = statuses.get(status, 0) + 1


async def run(url: str, path: str, body: bytes, connections: int, seconds: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(connection, host, port, request, deadline, latencies, statuses)
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    total = len(latencies)
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return {
        "requests": total,
        "ok": ok,
        "non_2xx": total - ok,
        "rps": total / elapsed,
        "p50_ms": pct(0.5) if total else None,
        "p99_ms": pct(0.99) if total else None,
        "seconds": elapsed,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--seconds", type=float, default=10)
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    print(
        orjson.dumps(
            trio.run(run, args.url, args.path, body, args.connections, args.seconds)
        ).decode(),
        flush=True,
    )
