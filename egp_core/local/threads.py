"""How many CPU threads llama.cpp should use: the machine's cores, minus what others use now.

llama.cpp's OpenMP threads spin while they wait for each other (the fastest
way on idle cores), and a spinning thread that shares its core with another
busy program stalls every step of the graph: on 2 cores with one held by a
browser, 2 spinning threads decode 2.5x slower than 1. So instead of one
global compromise (passive waiting costs 3x on a quiet machine), `ThreadPolicy`
looks at the CPUs this process may run on, measures from /proc/stat how much
of them *other* processes used over the last fraction of a second (our own CPU
time, from /proc/self/stat, is subtracted), and answers with the number of
cores that are free. The engine sets it between two decode calls
(llama_set_n_threads); on systems without /proc it uses every core. After a
pause (no decode for a second), the first step measures a fresh 50 ms
window rather than the whole pause, so a program that just stopped does not
leave the next prompt on one thread.
"""

from __future__ import annotations

import math
import os
import threading
import time

SAMPLE_SECONDS = 0.25  # how long a measurement window lasts
BUSY_THRESHOLD = 0.35  # a core that others use more than this is not free
STALE_SECONDS = 1.0  # a window older than this (the engine was idle) is measured afresh...
FRESH_SECONDS = 0.05  # ...over this long (the first step after a pause waits for it)


def machine_threads() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) jiffies summed over `cpus`, from /proc/stat."""
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *values = line.split()
                if int(name[3:]) not in cpus:
                    continue
                numbers = [int(v) for v in values[:8]]
                idle = numbers[3] + numbers[4]  # idle + iowait
                total += sum(numbers)
                busy += sum(numbers) - idle
    except (OSError, ValueError):
        return None
    return busy, total


def _own_jiffies() -> int | None:
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, every thread of this process
    except (OSError, ValueError, IndexError):
        return None


class ThreadPolicy:
    """Thread counts for the next decode: every allowed core that nobody else keeps busy.

    `fixed`: always this many (no measuring). `max_threads`: the ceiling
    (default: `machine_threads()`).
    """

    def __init__(self, max_threads: int | None = None, *, fixed: int | None = None) -> None:
        self.max_threads = max(1, max_threads or machine_threads())
        self.fixed = fixed
        try:
            self._cpus = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self._cpus = set(range(os.cpu_count() or 1))
        self._lock = threading.Lock()
        self._last = self._sample()
        self._last_at = time.monotonic()
        self._threads = self.max_threads
        self.others = 0.0  # cores other processes used in the last window

    def _sample(self) -> tuple[int, int, int] | None:
        times, own = _cpu_times(self._cpus), _own_jiffies()
        if times is None or own is None:
            return None
        return times[0], times[1], own

    @property
    def current(self) -> int:
        """The last answer of `threads()`, without measuring (for status pages)."""
        return self.fixed or self._threads

    def threads(self) -> int:
        """The thread count to use now; measures again once a window has passed."""
        if self.fixed:
            return self.fixed
        now = time.monotonic()
        if now - self._last_at < SAMPLE_SECONDS:
            return self._threads
        with self._lock:
            if now - self._last_at > STALE_SECONDS and self._last is not None:
                # After a pause the window would average what others did all along (a program that
                # just stopped, or one that just started): look at a fresh, short one instead.
                self._last = self._sample()
                time.sleep(FRESH_SECONDS)
                now = time.monotonic()
            sample = self._sample()
            if sample is None or self._last is None:
                self._last, self._last_at = sample, now
                return self._threads
            busy, total, own = (a - b for a, b in zip(sample, self._last, strict=True))
            self._last, self._last_at = sample, now
            if total <= 0:
                return self._threads
            per_core = total / len(self._cpus)  # jiffies one core had in the window
            self.others = max(0.0, (busy - own) / per_core)
            taken = math.floor(self.others + (1 - BUSY_THRESHOLD))
            self._threads = max(1, min(self.max_threads, len(self._cpus) - taken))
            return self._threads
