"""The machine line every benchmark's results start with.

The 2-core virtual machine these benchmarks ran on changed under them: their results name three
kernel builds, ``6.18.44-fc-v657`` (2026-11-30 to 12-01 06:00 UTC), ``fc-v669`` (12-01, 08:30
to 09:10) and ``fc-v1045`` (from 10:40), and the last ran the same code two to two and a half
times slower than the one before it; each one's speed also moves from minute to minute. So each
results file names the kernel, the processor and its cores. A quick probe of the machine's speed
(a pure-Python loop, or a dictionary's worth of work) was tried beside it and not kept: over 12
alternations with a hook call in process its times did not follow the call's (correlation 0.03
and 0.09), so a number of it would have said nothing about a run's figures. The floors each
benchmark measures beside its own figures are the comparison.
"""

from __future__ import annotations

import os
import platform


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


def describe() -> str:
    """``machine: <platform> (<processor>, <n> cores), python <version>``, the first line of a
    results file."""
    return (f"machine: {platform.platform()} ({processor()}, {os.cpu_count()} cores), "
            f"python {platform.python_version()}")
