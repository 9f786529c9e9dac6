"""``python -m bench.slowclients``: how many slow clients the daemon survives while serving others.

Starts ``router run`` on the default config (loopback, a free port, a
temporary data directory), opens ``--slow`` connections that send their
request head (``headers``) or body (``body``) at one byte per second, and
reconnects each one the server closes; alongside, a normal client posts a
valid 100-event Conscent body on a new connection ``--rate`` times a
second. Everything stops after ``--seconds``. It prints how many slow
connections were open at the end, how the server cut them off, and the
normal client's success and latency.

Example: ``python -m bench.slowclients --slow 500 --mode both --seconds 20``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio
import yaml

from bench.payloads import conscent_batch
from bench.procs import Child, daemon_ready, python

ROOT = Path(__file__).parents[1]
PATH = "/collect/event"


@dataclass
class Tally:
    open: int = 0
    open_at_end: int = 0
    peak: int = 0
    opened: int = 0
    refused: int = 0
    cut_after: list[float] = field(default_factory=list)
    answered: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    normal_errors: dict[str, int] = field(default_factory=dict)


def head(body_length: int) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\n"
        f"Content-Length: {body_length}\r\n\r\n"
    ).encode()


async def slow_client(host: str, port: int, mode: str, body: bytes, tally: Tally) -> None:
    """One slow client, reconnecting whenever the server closes it, until cancelled."""
    while True:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            tally.refused += 1
            await trio.sleep(1)
            continue
        tally.opened += 1
        tally.open += 1
        tally.peak = max(tally.peak, tally.open)
        started = time.monotonic()
        try:
            async with stream:
                if mode == "headers":
                    trickle = head(len(body)) + body
                else:
                    await stream.send_all(head(len(body)))
                    trickle = body

                async def answered(stream: trio.SocketStream = stream) -> None:
                    data = await stream.receive_some(65536)
                    if data.startswith(b"HTTP/1.1 "):
                        status = int(data.split()[1])
                        tally.answered[status] = tally.answered.get(status, 0) + 1

                async with trio.open_nursery() as nursery:

                    async def watch(nursery: trio.Nursery = nursery) -> None:
                        with contextlib.suppress(trio.BrokenResourceError):
                            await answered()
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(watch)
                    for byte in trickle:
                        await stream.send_all(bytes([byte]))
                        await trio.sleep(1)
                    await trio.sleep_forever()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            tally.open -= 1
        tally.cut_after.append(time.monotonic() - started)


async def normal_client(url: str, body: bytes, rate: float, tally: Tally) -> None:
    while True:
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                r = await client.post(PATH, content=body)
            key = str(r.status_code)
            if r.is_success:
                tally.latencies.append(time.monotonic() - started)
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        tally.normal_errors[key] = tally.normal_errors.get(key, 0) + 1
        await trio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


async def drive(url: str, args: argparse.Namespace, tally: Tally) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    body = conscent_batch(100)
    small = conscent_batch(1)
    end = trio.current_time() + args.seconds
    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = end
        for i in range(args.slow):
            mode = args.mode if args.mode != "both" else ("headers", "body")[i % 2]
            nursery.start_soon(slow_client, host, int(port), mode, small, tally)
            if i % 50 == 49:
                await trio.sleep(0.05)  # do not overflow the listen backlog at once
        nursery.start_soon(normal_client, url, body, args.rate, tally)
        await trio.sleep_until(end - 0.2)
        tally.open_at_end = tally.open


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=500, help="slow connections (default 500)")
    parser.add_argument("--mode", choices=["headers", "body", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=20.0, help="normal requests per second")
    parser.add_argument("--max-connections", type=int, help="server.max_connections")
    parser.add_argument("--keepalive-timeout", help="server.keepalive_timeout")
    parser.add_argument("--body-timeout", help="server.body_timeout")
    args = parser.parse_args(argv)
    args.slow = min(args.slow, 5000)
    args.seconds = min(args.seconds, 120.0)

    with tempfile.TemporaryDirectory(prefix="slowclients-") as tmp:
        config = yaml.safe_load((ROOT / "config" / "router.yaml").read_text())
        config["sinks"]["events_file"]["path"] = str(Path(tmp) / "events.ndjson")
        config["logging"] = {"level": "info", "format": "json"}
        server = config["server"]
        for key in ("max_connections", "keepalive_timeout", "body_timeout"):
            if getattr(args, key) is not None:
                server[key] = getattr(args, key)
        path = Path(tmp) / "router.yaml"
        path.write_text(yaml.safe_dump(config))
        command = python(
            "-m", "router", "run", "-c", str(path), "--bind", "127.0.0.1:0",
            "--data-dir", str(Path(tmp) / "data"),
        )  # fmt: skip
        daemon = Child(command, daemon_ready)
        tally = Tally()
        try:
            trio.run(drive, daemon.url, args, tally)
        finally:
            daemon.stop()

    served = sum(n for k, n in tally.normal_errors.items() if k.startswith("2"))
    total = sum(tally.normal_errors.values())
    print(
        f"slow clients: {args.slow} ({args.mode}), {args.seconds:g} s; "
        f"connections opened {tally.opened}, open at the end {tally.open_at_end}, "
        f"peak {tally.peak}, connect failures {tally.refused}"
    )
    if tally.cut_after:
        print(
            f"  cut off by the server: {len(tally.cut_after)}, after median "
            f"{statistics.median(tally.cut_after):.1f} s; answers to slow clients "
            f"{dict(sorted(tally.answered.items()))}"
        )
    worst = max(tally.latencies, default=0)
    print(
        f"normal client: {served}/{total} answered 2xx; outcomes {tally.normal_errors}; "
        f"latency p50 {pct(tally.latencies, 50) * 1000:.0f} ms, "
        f"p99 {pct(tally.latencies, 99) * 1000:.0f} ms, max {worst * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
