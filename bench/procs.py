"""Child processes for the benchmark: start, wait until ready, read counters, stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import httpx
import orjson


class Child:
    """A subprocess whose stdout is read line by line in a thread (so it never blocks)."""

    def __init__(
        self,
        args: Sequence[str],
        ready: Callable[[str], str | None],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ):
        self.args = list(args)
        self.lines: list[str] = []
        self.url = ""
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            text=True,
        )
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not self._ready.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError(f"{self.args[:4]} did not start:\n" + "\n".join(self.lines[-20:]))

    def _read(self, ready: Callable[[str], str | None]) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if not self.url:
                url = ready(line)
                if url:
                    self.url = url
                    self._ready.set()
        self._ready.set()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def ready_line(line: str) -> str | None:
    """``READY <url>`` (the upstream and the ceiling app)."""
    match = re.match(r"READY (\S+)", line)
    return match.group(1) if match else None


def daemon_ready(line: str) -> str | None:
    """The ingest URL once the router is ready: a lone daemon's ``daemon.ready``, or
    the supervisor's ``workers.ready`` (``--workers``, ``server.delivery: process``)."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict):
        return None
    event = entry.get("event")
    if event == "workers.ready" or (event == "daemon.ready" and "worker" not in entry):
        return entry["binds"][0]
    return None


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    want = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def metric(url: str, name: str, workers: int = 1, **labels: str) -> float:
    """A sample from a daemon's /metrics (0 if absent).

    A worker group answers every scrape for all of its workers, summed; with
    ``workers`` above 1 this checks that each of them answered.
    """
    text = httpx.get(url + "/metrics", timeout=10).text
    if workers > 1:
        up = _sample(text, "router_workers_up", {})
        if up != workers:
            raise RuntimeError(f"only {up:g} of {workers} workers answered /metrics")
    return _sample(text, name, labels)


def upstream_stats(url: str) -> dict:
    return httpx.get(url + "/__stats", timeout=10).json()


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()
