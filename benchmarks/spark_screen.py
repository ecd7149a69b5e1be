"""Time the population screen on Spark local[2], step by step. Run by hand, never by the tests:

    .venv/bin/python benchmarks/spark_screen.py --database omop-100000.duckdb [--rounds 2]
        [--compare-src /path/to/other/checkout/src --compare-label 'git archive REV src']

Exports the tables of a DuckDB OMOP database (benchmarks/realistic.py writes one; screen.py
keeps it under --work) to Parquet beside it, once, then runs `run_screen(..., engine_name=
"spark")` on the Parquet folder in a fresh process per round (JVM start included), printing
the whole time and each step's. With --compare-src, the rounds alternate with the same run
from another source tree (for example `git archive <rev> src`), and the two worklist files
must be identical. Prints the figures and writes them to benchmarks/results/spark_screen.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2025-06-30"

CHILD = """
import contextlib, datetime as dt, json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from imnm.screen.run import run_screen, write_worklist
steps = {}
@contextlib.contextmanager
def step(label):
    t0 = time.perf_counter()
    yield
    steps[label] = round(time.perf_counter() - t0, 1)
r = run_screen("omop", sys.argv[2], engine_name="spark",
               as_of=dt.date.fromisoformat(sys.argv[3]), progress=step)
write_worklist(r, Path(sys.argv[4]))
print(json.dumps({"seconds": round(time.perf_counter() - start, 1), "rows": len(r.rows),
                  "steps": steps}))
"""


EXPORT = """
import duckdb, sys
with duckdb.connect(sys.argv[1], read_only=True) as con:
    tables = [t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()]
    for table in tables:
        con.execute(f"COPY {table} TO '{sys.argv[2]}/{table}.parquet' (FORMAT parquet)")
"""


def export(database: Path) -> Path:
    """The database's tables as Parquet files in a folder beside it (made once)."""
    folder = database.with_name(database.stem + "-parquet")
    if not folder.is_dir():
        folder.mkdir()
        subprocess.run([sys.executable, "-c", EXPORT, str(database), str(folder)], check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compare-src", type=Path, default=None)
    parser.add_argument("--compare-label", default="",
                        help="what --compare-src is (written with the results)")
    args = parser.parse_args()
    parquet = export(args.database.resolve())
    trees = {"this checkout": ROOT / "src"}
    if args.compare_src:
        trees["--compare-src"] = args.compare_src.resolve()
    lines = [f"imnm screen on Spark local[2], {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
             f"{describe()}; data: {args.database.name} as "
             f"Parquet; screen date {AS_OF}; one process per run (JVM start included)"]
    if args.compare_src:
        lines.append(f"  --compare-src: {args.compare_label or args.compare_src}")
    outputs: dict[str, Path] = {}
    for index in range(args.rounds):
        for label, src in trees.items():
            out = parquet.with_name(f"{parquet.name}-worklist-{list(trees).index(label)}.csv")
            outputs[label] = out
            run = subprocess.run([sys.executable, "-c", CHILD, str(src), str(parquet), AS_OF,
                                  str(out)], capture_output=True, text=True, check=True)
            figures = json.loads(run.stdout.strip().splitlines()[-1])
            lines.append(f"  round {index + 1} {label:14s} {figures['seconds']:6.1f} s  "
                         f"{figures['rows']} worklist rows  steps {figures['steps']}")
            print(lines[-1], flush=True)
    if len(outputs) == 2:
        first, second = outputs.values()
        same = first.read_bytes() == second.read_bytes()
        lines.append(f"  worklist files identical: {same}")
        if not same:
            raise SystemExit("the two source trees gave different worklists")
    print("\n".join(lines))
    (ROOT / "benchmarks" / "results" / "spark_screen.txt").write_text(
        "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
