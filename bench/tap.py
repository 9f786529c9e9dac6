"""``python -m bench.tap``: ingest ev/s with no tap, with one that came and went, with one attached.

Workload 1 of ``python -m bench`` (a 100-event Conscent batch relayed to
Conscent on the fake upstream), each run on a fresh daemon and upstream:

- ``no tap``: no tap was ever attached (the call sites' ``hub.active`` test only);
- ``tap detached``: a ``router tap`` attached and left before the load;
- ``tap attached``: ``router tap --source conscent`` reads throughout,
  its output counted (lines, and what it says it dropped).

The modes take turns, ``--repeat`` times; the best run of each counts (the
VM is noisy). Every ratio divides two figures of this run on this machine.

Example: ``python -m bench.tap --seconds 5 --repeat 3``.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench import payloads
from bench.procs import Child, metric, python
from bench.run import daemon_config, load, router_run_args, upstream

MODES = ("no tap", "tap detached", "tap attached")
EVENTS_PER_REQUEST = 100


@dataclass
class Run:
    mode: str
    accepted_eps: float
    rps: float
    p99_ms: float | None
    non_2xx: int
    tap_lines: int = 0
    tap_dropped: int = 0


def admin_ready(line: str) -> str | None:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if isinstance(entry, dict) and entry.get("event") == "daemon.ready":
        return f"{entry['binds'][0]} {entry['admin']}"
    return None


class TapReader:
    """``router tap`` in a child process; its lines counted in a thread."""

    def __init__(self, admin: str, *args: str):
        self.proc = subprocess.Popen(
            python("-m", "router", "tap", "--admin", admin, *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.lines = 0
        self.dropped = 0
        self.attached = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self.attached.wait(30):
            raise RuntimeError("router tap did not attach")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if raw.startswith(b'{"tap"'):
                line = orjson.loads(raw)
                if line["tap"] == "attached":
                    self.attached.set()
                elif line["tap"] == "dropped":
                    self.dropped = line["count"]
            else:
                self.lines += 1

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._thread.join(10)


def measure(mode: str, work: Path, body: Path, seconds: float, connections: int) -> Run:
    up = upstream()
    data = Path(tempfile.mkdtemp(prefix="tap-", dir=work))
    config = daemon_config(data, "conscent", "conscent_relay", up.url)
    # daemon_config puts the admin listener on a free port too.
    daemon = Child(router_run_args(config, data), admin_ready)
    url, admin = daemon.url.split()
    tap = None
    try:
        if mode == "tap detached":
            TapReader(admin, "--source", "conscent").stop()
        elif mode == "tap attached":
            tap = TapReader(admin, "--source", "conscent")
        before = metric(url, "router_events_accepted_total", 1, source="conscent")
        result = load(url, "/collect/event", body, seconds, connections)
        accepted = metric(url, "router_events_accepted_total", 1, source="conscent") - before
        run = Run(mode, accepted / result.seconds, result.rps, result.p99_ms, result.non_2xx)
        if tap is not None:
            time.sleep(1.5)  # the stream reports what it dropped once a second
            tap.stop()
            run.tap_lines, run.tap_dropped = tap.lines, tap.dropped
        return run
    finally:
        if tap is not None and tap.proc.poll() is None:
            tap.stop()
        daemon.stop()
        up.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tap", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="load per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode; the best counts")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=MODES,
        default=list(MODES),
        metavar="MODE",
        help="of " + ", ".join(MODES),
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="router-bench-tap-") as tmp:
        work = Path(tmp)
        body = work / "conscent.json"
        body.write_bytes(payloads.conscent_batch(EVENTS_PER_REQUEST))
        runs: dict[str, list[Run]] = {mode: [] for mode in args.modes}
        for i in range(args.repeat):
            for mode in args.modes:
                run = measure(mode, work, body, args.seconds, args.connections)
                runs[mode].append(run)
                print(
                    f"  run {i + 1} {mode:13} {run.accepted_eps:>10,.0f} ev/s"
                    f"  {run.non_2xx} non-2xx"
                    + (
                        f"  tap: {run.tap_lines:,} lines, {run.tap_dropped:,} dropped"
                        if run.tap_lines
                        else ""
                    ),
                    flush=True,
                )
    best = {mode: max(rs, key=lambda r: r.accepted_eps) for mode, rs in runs.items()}
    base = best[args.modes[0]].accepted_eps
    print(f"\n{'mode':14} {'accepted ev/s':>14} {'req/s':>9} {'p99 ms':>8} {'vs first':>10}")
    for mode, run in best.items():
        p99 = f"{run.p99_ms:.1f}" if run.p99_ms is not None else "-"
        print(
            f"{mode:14} {run.accepted_eps:>14,.0f} {run.rps:>9,.0f} {p99:>8} "
            f"{run.accepted_eps / base:>10.3f}"
        )
    attached = best.get("tap attached")
    if attached is None:
        return
    print(
        f"\ntap attached: it printed {attached.tap_lines:,} lines and said it dropped "
        f"{attached.tap_dropped:,}; ingest answered {attached.non_2xx} non-2xx."
    )


if __name__ == "__main__":
    main()
