"""Issue 14's three figures in one run, side by side: the screen against the hand-written query,
the CDS Hooks service's p99 at 50 clients, and the cold start of `imnm assess`. Run by hand:

    .venv/bin/python benchmarks/side_by_side.py --database site.duckdb
    .venv/bin/python benchmarks/side_by_side.py --sizes 1000000

It runs benchmarks/screen.py (on ``--database``, an OMOP DuckDB file, or on generated
realistic databases of ``--sizes``), benchmarks/service.py (2 workers at 50 clients, once in
development mode and once as in production, with an RS384 token per call, as issue 14
measured) and benchmarks/assess.py one after the other, each writing its own results file
(the service's as side_by_side-service*.txt), then prints the lines that answer the issue's
goals together, with the machine they ran on. The summary is written to
benchmarks/results/side_by_side.txt (the latest run), and the whole output of the run, every
benchmark's lines and the summary, with its start and end in UTC, to
benchmarks/results/side_by_side-YYYY-MM-DD-HHMM.txt (named by its start), which later runs
do not overwrite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


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
               "screen (goal: within 1.5x of the hand-written query, time and memory):",
               *lines(screen_file, "children (from", "children (generated",
                      "screen / hand-written"),
               "CDS Hooks patient-view (goal: p99 at most 50 ms with 50 clients):",
               *lines("side_by_side-service.txt", "load generator", "50 concurrent"),
               *lines("side_by_side-service-tokens.txt", "load generator", "50 concurrent"),
               "cold start (goal: imnm assess at most 0.3 s):",
               *lines("assess.txt", "process start to exit")]
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
