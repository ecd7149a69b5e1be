"""Issue 14's three figures in one run, side by side: the screen against the hand-written query,
the CDS Hooks service's p99 at 50 clients, and the cold start of `imnm assess`. Run by hand:

    .venv/bin/python benchmarks/side_by_side.py --database site.duckdb
    .venv/bin/python benchmarks/side_by_side.py --sizes 1000000

It runs benchmarks/screen.py (on ``--database``, an OMOP DuckDB file, or on generated
realistic databases of ``--sizes``), benchmarks/service.py (2 workers at 50 clients, once in
development mode and once as in production, with an RS384 token per call, as issue 14
measured) and benchmarks/assess.py one after the other, each writing its own results file
(the service's as side_by_side-service*.txt), then prints the lines that answer the issue's
goals together, with the machine they ran on, and a verdict on each goal for this run (met or
NOT met, the screen both timed as imnm is and against the query alone). The summary is written to
benchmarks/results/side_by_side.txt (the latest run), and the whole output of the run, every
benchmark's lines and the summary, with its start and end in UTC, to
benchmarks/results/side_by_side-YYYY-MM-DD-HHMM.txt (named by its start), which later runs
do not overwrite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

# Issue 14's goals, against which each run's figures are judged in its summary.
SCREEN_RATIO_GOAL = 1.5  # imnm / the hand-written query, in time and in peak memory
HOOK_P99_GOAL_MS = 50.0  # p99 with 50 concurrent clients
COLD_START_GOAL_S = 0.3  # imnm assess, process start to exit


TRANSCRIPT: list[str] = []
"""Every line this run printed, its benchmarks' included, for the file of the whole run."""


def say(line: str) -> None:
    print(line, flush=True)
    TRANSCRIPT.append(line)


def run(script: str, *args: str) -> None:
    say(f"--- {script} {' '.join(args)}")
    with subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            say(line.rstrip("\n"))
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, script)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lines(name: str, *markers: str) -> list[str]:
    text = (RESULTS / name).read_text(encoding="utf-8").splitlines()
    return [line.rstrip() for line in text if any(m in line for m in markers)]


def _first(name: str, marker: str, pattern: str) -> re.Match[str] | None:
    """``pattern`` in the first line of the results file ``name`` that holds ``marker``."""
    found = lines(name, marker)
    return re.search(pattern, found[0]) if found else None


def _met(value: float, goal: float) -> str:
    return "met" if value <= goal else "NOT met"


def verdicts(screen_json: str) -> list[str]:
    """This run's figures against issue 14's goals, one line each: the screen at each size
    (timed as imnm is, and against the query alone), the hook's p99 in each mode, and the
    median cold start. A figure the results do not hold is said to be missing."""
    out = ["verdicts, this run on this machine (issue 14's goals):"]
    figures = json.loads((RESULTS / screen_json).read_text(encoding="utf-8"))
    for size in figures.values():
        time_as, alone = size["screen_over_hand"], size["screen_over_hand_query"]
        memory = size["screen_over_hand_memory"]
        out.append(f"  screen, {size['children']:,} children: {time_as:.2f}x the hand-written "
                   f"query timed as imnm is ({_met(time_as, SCREEN_RATIO_GOAL)}), "
                   f"{alone:.2f}x the query alone ({_met(alone, SCREEN_RATIO_GOAL)}), "
                   f"{memory:.2f}x its memory ({_met(memory, SCREEN_RATIO_GOAL)}); "
                   f"goal {SCREEN_RATIO_GOAL}x")
    for mode, name in (("development mode", "side_by_side-service.txt"),
                       ("a token per call", "side_by_side-service-tokens.txt")):
        hook = _first(name, "2 worker(s), 50 concurrent", r"p99\s+([0-9.]+) ms\s+(\d+) calls/s")
        if hook is None:
            out.append(f"  hook, {mode}: no p99 at 50 clients in {name}")
            continue
        p99, rate = float(hook[1]), int(hook[2])
        out.append(f"  hook, {mode}: p99 {p99:.1f} ms at 50 clients, {rate:,} calls/s "
                   f"({_met(p99, HOOK_P99_GOAL_MS)}; goal {HOOK_P99_GOAL_MS:g} ms)")
    cold = _first("assess.txt", "imnm assess (process start to exit",
                  r"median ([0-9.]+) s, min ([0-9.]+) s")
    if cold is None:
        out.append("  cold start: no imnm assess figure in assess.txt")
    else:
        median, least = float(cold[1]), float(cold[2])
        out.append(f"  cold start: imnm assess median {median:.3f} s, min {least:.3f} s "
                   f"({_met(median, COLD_START_GOAL_S)} by the median; goal "
                   f"{COLD_START_GOAL_S:g} s)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--database", help="an OMOP DuckDB file (not generated)")
    where.add_argument("--sizes", type=int, nargs="+", help="generated realistic databases")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--service-seconds", type=float, default=15)
    parser.add_argument("--cold-runs", type=int, default=20)
    args = parser.parse_args()
    started = utc_now()
    say(f"side_by_side.py started {started:%Y-%m-%d %H:%M:%S} UTC")
    screen = ["--database", args.database] if args.database else \
        ["--sizes", *map(str, args.sizes)]
    run("screen.py", *screen, "--rounds", str(args.rounds))
    service = ["--workers", "2", "--concurrency", "50", "--seconds",
               f"{args.service_seconds:g}"]
    run("service.py", *service, "--results", "side_by_side-service.txt")
    run("service.py", *service, "--tokens", "--results", "side_by_side-service-tokens.txt")
    run("assess.py", "--runs", str(args.cold_runs))
    screen_file = "screen-database.txt" if args.database else "screen.txt"
    summary = [describe(),
               f"screen (goal: within {SCREEN_RATIO_GOAL}x of the hand-written query, time and "
               "memory):",
               *lines(screen_file, "children (from", "children (generated",
                      "screen / hand-written"),
               f"CDS Hooks patient-view (goal: p99 at most {HOOK_P99_GOAL_MS:g} ms with 50 "
               "clients):",
               *lines("side_by_side-service.txt", "load generator", "50 concurrent"),
               *lines("side_by_side-service-tokens.txt", "load generator", "50 concurrent"),
               f"cold start (goal: imnm assess at most {COLD_START_GOAL_S:g} s):",
               *lines("assess.txt", "process start to exit"),
               *verdicts(screen_file.replace(".txt", ".json"))]
    text = "\n".join(summary) + "\n"
    (RESULTS / "side_by_side.txt").write_text(text, encoding="utf-8")
    for line in summary:
        say(line)
    say(f"side_by_side.py ended {utc_now():%Y-%m-%d %H:%M:%S} UTC")
    whole = RESULTS / f"side_by_side-{started:%Y-%m-%d-%H%M}.txt"
    whole.write_text("\n".join(TRANSCRIPT) + "\n", encoding="utf-8")
    print(f"the whole run: {whole.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
