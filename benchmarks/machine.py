"""The machine line every benchmark's results start with.

The 2-core virtual machine these benchmarks ran on changed under them: their results name three
kernel builds, ``6.18.44-fc-v657`` (2026-11-30 to 12-01 06:00 UTC), ``fc-v669`` (12-01, 08:30
to 09:10) and ``fc-v1045`` (from 10:40), and the last ran the same code two to two and a half
times slower than the one before it; each one's speed also moves from minute to minute. So each
results file names the kernel, the processor and its cores, and, where wall time is the figure,
carries a speed probe measured at the start of the run: a pure-Python loop, the same on every
machine, to set figures from different runs side by side.
"""

from __future__ import annotations

import os
import platform
import time

PROBE_ADDITIONS = 1_000_000
PROBE_TRIES = 5


def processor() -> str:
    """The processor's model name as the kernel gives it (``/proc/cpuinfo``), else
    ``platform.processor()``, else "processor unknown"."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "processor unknown"


def probe_seconds() -> float:
    """The fastest of :data:`PROBE_TRIES` runs of a pure-Python loop of
    :data:`PROBE_ADDITIONS` additions, in seconds."""
    best = float("inf")
    for _ in range(PROBE_TRIES):
        start = time.perf_counter()
        total = 0
        for i in range(PROBE_ADDITIONS):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def describe(probe: bool = True) -> str:
    """``machine: <platform> (<processor>, <n> cores), python <version>``, and with ``probe``
    the speed probe's time, as the first line of a results file."""
    line = (f"machine: {platform.platform()} ({processor()}, {os.cpu_count()} cores), "
            f"python {platform.python_version()}")
    if probe:
        line += (f"; speed probe {probe_seconds() * 1000:.0f} ms (a pure-Python loop of "
                 f"{PROBE_ADDITIONS:,} additions, fastest of {PROBE_TRIES})")
    return line
