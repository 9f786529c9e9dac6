"""CPU time and peak memory of a process and all its descendants, read from /proc (Linux).

A daemon with ``--workers`` or a separate delivery process spreads its work
over several processes; per-event CPU has to count all of them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant, parents first.

    Children are listed per thread (``/proc/<pid>/task/<tid>/children``): a
    child started from another thread is listed only under that thread.
    """
    found = [pid]
    for parent in found:  # grows while it is walked
        try:
            tasks = list((PROC / str(parent) / "task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except FileNotFoundError:
                continue
            found += [int(c) for c in children if int(c) not in found]
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if it is gone.

    The name is in parentheses and may itself hold spaces or ")": split after the last one.
    """
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid``'s process tree since each process started.

    A process's stat sums all its threads, live and exited. Its ``cutime`` and
    ``cstime`` add the children it has already reaped, so a worker that exits
    during a measurement does not take its CPU time with it.
    """
    ticks = 0
    for member in tree(pid):
        fields = _stat_fields(member)
        if fields is None:
            continue
        # Fields 14-17 of proc(5) (utime, stime, cutime, cstime); fields[0] is field 3.
        ticks += sum(int(v) for v in fields[11:15])
    return ticks / TICKS


def rss_peak_mb(pid: int) -> float:
    """The summed peak resident memory (VmHWM) of ``pid``'s process tree, in MB (10⁶ bytes).

    0 if the process is gone. A sum of peaks: an upper bound on the tree's peak.
    """
    kib = 0
    for member in tree(pid):
        try:
            with open(PROC / str(member) / "status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        kib += int(line.split()[1])
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return kib * 1024 / 1e6


def machine_busy_seconds() -> float:
    """CPU seconds the machine's cores spent on any process since boot (``/proc/stat``).

    User, nice, system, irq and softirq time; not idle, iowait or steal.
    """
    with open(PROC / "stat") as stat:
        fields = stat.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / TICKS


class Others:
    """CPU that processes outside this one's tree used since it was made, in cores.

    The machine's busy time less this process tree's (its reaped children
    included): on a shared machine, what other jobs took from a measurement.
    """

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._busy, self._ours = machine_busy_seconds(), cpu_seconds(os.getpid())

    def cores(self) -> float:
        busy = machine_busy_seconds() - self._busy
        ours = cpu_seconds(os.getpid()) - self._ours
        return max(0.0, busy - ours) / max(1e-9, time.monotonic() - self._started)
