"""The machine line every benchmark's results start with.

The 2-core virtual machine these benchmarks ran on changed under them: their results name three
kernel builds, ``6.18.44-fc-v657`` (2026-11-30 to 12-01 06:00 UTC), ``fc-v669`` (12-01, 08:30
to 09:10) and ``fc-v1045`` (from 10:40), and the last ran the same code two to two and a half
times slower than the one before it; each one's speed also moves from minute to minute.

So each results file names the kernel, the processor and its cores, and, where wall time is the
figure, two probes taken at the start of the run: a pure-Python loop (compute, in cache) and
the first touch of 64 MiB of fresh memory (its page faults, which a virtual machine can make
expensive: 4 to 5 µs a page on fc-v1045). Neither predicts every benchmark (in the side-by-side
run of 23:45 UTC on 2026-12-01 the loop took 42 to 67 ms, within its usual range, while the
bare ASGI app gave the lowest floor of any side-by-side run, 8,386 calls/s), so the floors
measured beside each figure stay the comparison; the probes say what kind of machine a run had.
"""

from __future__ import annotations

import mmap
import os
import platform
import time

PROBE_ADDITIONS = 1_000_000
PROBE_TRIES = 5
FRESH_MIB = 64


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


def first_touch_seconds() -> float:
    """The fastest of :data:`PROBE_TRIES` first touches of :data:`FRESH_MIB` MiB of fresh
    memory (an anonymous mapping of its own each time, one byte written in each page, so every
    page is faulted in), in seconds."""
    size = FRESH_MIB * 1024 * 1024
    best = float("inf")
    for _ in range(PROBE_TRIES):
        with mmap.mmap(-1, size) as fresh:
            start = time.perf_counter()
            for offset in range(0, size, mmap.PAGESIZE):
                fresh[offset] = 1
            best = min(best, time.perf_counter() - start)
    return best


def describe(probe: bool = True) -> str:
    """``machine: <platform> (<processor>, <n> cores), python <version>``, and with ``probe``
    the two probes' times, as the first line of a results file."""
    line = (f"machine: {platform.platform()} ({processor()}, {os.cpu_count()} cores), "
            f"python {platform.python_version()}")
    if probe:
        pages = FRESH_MIB * 1024 * 1024 // mmap.PAGESIZE
        touch = first_touch_seconds()
        line += (f"; probes, fastest of {PROBE_TRIES}: a pure-Python loop of "
                 f"{PROBE_ADDITIONS:,} additions {probe_seconds() * 1000:.0f} ms, the first "
                 f"touch of {FRESH_MIB} MiB of fresh memory {touch * 1000:.0f} ms "
                 f"({touch / pages * 1e6:.1f} µs a page)")
    return line
