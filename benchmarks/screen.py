"""Time the population screen. Run by hand, never by the test suite:

    .venv/bin/python benchmarks/screen.py [--sizes 100000 1000000 3000000] [--spark-size 0]
        [--sparse]

For each size: a realistic OMOP database (benchmarks/realistic.py: about 60 measurements, 10
conditions and 5 drug exposures per child, 3 million concepts, children planted by
imnm.screen.synth with their ground truth; --sparse uses synth alone, the older shape), then in
separate processes (so peak memory is each one's own): the screen on DuckDB, checked against
the planted truth (every planted child in its tier, no decoy); a tight hand-written query
(hand_written.sql) that must return the same worklist, checked row for row, timed as imnm's
figure is (a new connection, the phenotype's lookup views, the query, closing the connection:
about 30 ms that the query alone does not show) and as the query alone; DuckDB's plain
scan of the columns the screen reads (the floor); the per-child Python route on a sample of 10,000
children, extrapolated (labelled so); and Spark local mode on --spark-size (from Parquet).
Each measurement runs --rounds times, interleaved, and the minimum and median are printed.
Prints the figures and writes them to benchmarks/results/screen.txt and screen.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # this folder's benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2025-06-30"
SAMPLE = 10_000
HAND = ROOT / "benchmarks" / "hand_written.sql"

SCAN = """
SELECT
  (SELECT COUNT(*) FROM (SELECT person_id, gender_concept_id, year_of_birth, month_of_birth,
     day_of_birth FROM db.person)),
  (SELECT COUNT(*) FROM (SELECT person_id, condition_concept_id, condition_source_concept_id,
     condition_start_date FROM db.condition_occurrence)),
  (SELECT COUNT(*) FROM (SELECT person_id, measurement_concept_id, measurement_date,
     value_as_number, value_as_concept_id, unit_concept_id, unit_source_value, range_high
     FROM db.measurement)),
  (SELECT COUNT(*) FROM (SELECT person_id, drug_concept_id, drug_exposure_start_date,
     drug_exposure_end_date FROM db.drug_exposure)),
  (SELECT MAX(hash(person_id, gender_concept_id, year_of_birth)) FROM db.person),
  (SELECT MAX(hash(person_id, measurement_concept_id, value_as_number, range_high))
     FROM db.measurement),
  (SELECT MAX(hash(person_id, condition_source_concept_id, condition_start_date))
     FROM db.condition_occurrence),
  (SELECT MAX(hash(person_id, drug_concept_id, drug_exposure_start_date))
     FROM db.drug_exposure)
"""

CHILD = {
    "screen": """
import datetime as dt, json, sys, time, duckdb
from imnm.knowledge import load_knowledge
from imnm.screen.run import run_screen
import contextlib
load_knowledge()
steps = {}
@contextlib.contextmanager
def step(label):
    t0 = time.perf_counter()
    yield
    steps[label] = time.perf_counter() - t0
start = time.perf_counter()
r = run_screen("omop", sys.argv[1], as_of=dt.date.fromisoformat(sys.argv[2]), progress=step)
took = time.perf_counter() - start
counting = steps.get("counting what could not be read", 0.0)
con = duckdb.connect(sys.argv[1], read_only=True)
has_truth = con.execute("SELECT COUNT(*) FROM duckdb_tables() WHERE table_name = 'imnm_truth'"
                        ).fetchone()[0]
rows = con.execute("SELECT person_id, expected_tiers FROM imnm_truth").fetchall() \
    if has_truth else []
truth = {(str(p), t) for p, ts in rows for t in (ts.split(";") if ts else [])}
found = {(row.person_id, row.tier) for row in r.rows}
rows = [[x.person_id, x.tier, x.diagnosis_codes, x.peak_ck_u_per_l, x.peak_ck_multiple_of_uln,
         x.anti_hmgcr, x.anti_srp, x.days_on_corticosteroid_alone] for x in r.rows]
with open(sys.argv[3], "w") as out:
    json.dump(rows, out)
missed, extra = (len(truth - found), len(found - truth)) if has_truth else ("n/a", "n/a")
print(took, len(r.rows), r.population, missed, extra, counting)
""",
    "hand": """
import datetime as dt, json, sys, time, duckdb
from imnm.knowledge import load_knowledge
from imnm.screen.definition import Parameters, lookup_views, split
kb = load_knowledge()
with open(sys.argv[3]) as handle:
    sql = handle.read()
# Two clocks. The whole: what imnm's own figure covers (a new connection, the phenotype's
# data as lookup views, the query, closing the connection). The query alone: ATTACH and
# the query, with the connection made and the lookup views defined before it starts.
whole = time.perf_counter()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
for statement in split(lookup_views(kb, Parameters.from_knowledge(
        kb, dt.date.fromisoformat(sys.argv[2])))):
    con.execute(statement)
start = time.perf_counter()
con.execute(f"ATTACH '{sys.argv[1]}' AS db (READ_ONLY)")
found = con.execute(sql).fetchall()
took = time.perf_counter() - start
con.close()
whole = time.perf_counter() - whole
answer = {2: "positive", 1: "negative", 0: "not tested"}
rows = [[str(p), t, c, k, m, answer[h], answer[s], d] for p, t, c, k, m, h, s, d in found]
with open(sys.argv[4], "w") as out:
    json.dump(rows, out)
print(whole, len(rows), took)
""",
    "shape": """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps({t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("person", "measurement", "condition_occurrence", "drug_exposure",
                            "concept")}))
""",
    "floor": """
import duckdb, sys, time
start = time.perf_counter()
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"ATTACH '{sys.argv[1]}' AS db (READ_ONLY)")
con.execute(sys.argv[3]).fetchone()
print(time.perf_counter() - start)
""",
    "per_child": """
import datetime as dt, sys, time
from imnm.knowledge import load_knowledge
from imnm.screen import per_child
from imnm.screen.definition import Parameters
from imnm.screen.engines import DuckDBEngine
from imnm.screen.run import run_screen
kb = load_knowledge(); as_of = dt.date.fromisoformat(sys.argv[2])
engine = DuckDBEngine()
run_screen("omop", sys.argv[1], engine=engine, as_of=as_of)  # stages the views
params = Parameters.from_knowledge(kb, as_of)
start = time.perf_counter(); n = 0
for p in per_child.patients(engine, kb, as_of, params.max_age_years, sample=int(sys.argv[3])):
    per_child.tiers(p, kb, params); n += 1
print(n, time.perf_counter() - start)
""",
    "spark": """
import datetime as dt, sys
from imnm.screen.run import run_screen
r = run_screen("omop", sys.argv[1], engine_name="spark", as_of=dt.date.fromisoformat(sys.argv[2]))
print(len(r.rows), r.population)
""",
}


PEAK = """
import re
with open("/proc/self/status") as _status:
    print(re.search(r"VmHWM:\\s+(\\d+) kB", _status.read()).group(1))
"""


def measure(kind: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (VmHWM of the child itself, MiB) and the child's
    output. (ru_maxrss is not used: Linux carries it across fork and exec, so a child would
    report the parent's peak.)"""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", CHILD[kind] + PEAK, *args],
                         capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"{kind} failed: {run.stderr[-2000:]}")
    *lines, peak_kb = run.stdout.strip().splitlines()
    return wall, int(peak_kb) / 1024, "\n".join(lines).strip()


def same_worklist(imnm_rows: Path, hand_rows: Path) -> str:
    """'same rows' when the hand-written query returned imnm's worklist row for row, else
    how many rows differ (the benchmark's figures then compare different work)."""
    ours = {tuple(r) for r in json.loads(imnm_rows.read_text(encoding="utf-8"))}
    theirs = {tuple(r) for r in json.loads(hand_rows.read_text(encoding="utf-8"))}
    if ours == theirs:
        return f"same {len(ours)} rows"
    return f"DIFFERENT: {len(ours - theirs)} only in imnm, {len(theirs - ours)} only by hand"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--spark-size", type=int, default=0, help="0: no Spark run")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder")
    parser.add_argument("--sparse", action="store_true",
                        help="synth's own sparse population instead of the realistic one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", type=Path, default=None,
                        help="an existing DuckDB file of OMOP tables (a site's extract, say) "
                             "instead of generated ones; planted children are checked only "
                             "where it holds imnm_truth")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from imnm.screen import synth

    work = args.work or Path(tempfile.mkdtemp(prefix="imnm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    lines = [describe()]
    figures: dict[str, dict[str, float]] = {}
    for n in ([0] if args.database else args.sizes):
        db = work / f"omop-{n}.duckdb"
        t0 = time.perf_counter()
        if args.database:
            db = args.database
            shape = json.loads(measure("shape", str(db))[2])
            n = shape["person"]
        elif args.sparse:
            synth.write_omop(synth.population(n, 42), db)
        else:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from realistic import build

            shape = build(n, db)
        gen = time.perf_counter() - t0
        screens, floors, hands, hand_queries, countings = [], [], [], [], []
        imnm_rows, hand_rows = work / "imnm-rows.json", work / "hand-rows.json"
        for _ in range(args.rounds):  # interleaved, so drift hits all alike
            screen_wall, screen_mb, screen_out = measure("screen", str(db), AS_OF,
                                                         str(imnm_rows))
            hand_wall, hand_mb, hand_out = measure("hand", str(db), AS_OF, str(HAND),
                                                   str(hand_rows))
            floor_wall, floor_mb, floor_out = measure("floor", str(db), AS_OF, SCAN)
            screens.append(float(screen_out.split()[0]))
            countings.append(float(screen_out.split()[5]))
            hands.append(float(hand_out.split()[0]))
            hand_queries.append(float(hand_out.split()[2]))
            floors.append(float(floor_out))
        same = same_worklist(imnm_rows, hand_rows)
        _s, rows, population, missed, extra, _c = screen_out.split()
        screen_s, floor_s, hand_s = min(screens), min(floors), min(hands)
        hand_query_s = min(hand_queries)
        # the worklist alone (what the hand-written query does): the run without the counts
        # of what could not be read, in the same round as its total
        worklist_s = min(s - c for s, c in zip(screens, countings, strict=True))
        counting_s = min(countings)
        screen_out = (f"{rows} rows, {population} children; planted children missed {missed}, "
                      f"rows not in the truth {extra}; hand-written query: {same}")
        if not args.sparse:
            screen_out += (f"; {shape['measurement'] / n:.0f} measurements, "
                           f"{shape['condition_occurrence'] / n:.0f} conditions, "
                           f"{shape['drug_exposure'] / n:.0f} drugs per child, "
                           f"{shape['concept']:,.0f} concepts")
        sample = min(SAMPLE, n)
        _pc_wall, pc_mb, pc_out = measure("per_child", str(db), AS_OF, str(sample))
        pc_n, pc_seconds = pc_out.split()
        per_child_s = float(pc_seconds) / int(pc_n) * n
        fig = {"children": n, "generate_s": gen, "screen_s": screen_s, "screen_peak_mib":
               screen_mb, "screen_process_s": screen_wall, "floor_s": floor_s,
               "floor_peak_mib": floor_mb, "floor_process_s": floor_wall,
               "screen_over_floor": screen_s / floor_s, "hand_s": hand_s,
               "hand_peak_mib": hand_mb, "screen_over_hand": screen_s / hand_s,
               "hand_query_s": hand_query_s, "screen_over_hand_query": screen_s / hand_query_s,
               "screen_over_hand_memory": screen_mb / hand_mb, "same_as_hand": same,
               "screen_us_per_child": screen_s / n * 1e6,
               "screen_worklist_s": worklist_s, "screen_counting_s": counting_s,
               "worklist_over_hand": worklist_s / hand_s,
               "per_child_extrapolated_s": per_child_s,
               "per_child_sample": int(pc_n)}
        lines += [
            f"\n{n:,} children ("
            + (f"from {args.database}" if args.database else f"generated in {gen:.1f} s")
            + f"; {screen_out})",
            f"  screen on DuckDB      {screen_s:8.2f} s   "
            f"(median {statistics.median(screens):.2f} s)"
            f"   peak {screen_mb:7.0f} MiB   "
            f"{fig['screen_us_per_child']:.1f} µs per child (whole process {screen_wall:.2f} s,"
            " with imports)",
            f"    of which worklist   {worklist_s:8.2f} s   (reading, staging, screening; the "
            f"counts of what could not be read: {counting_s:.2f} s)",
            f"  hand-written query    {hand_s:8.2f} s   "
            f"(median {statistics.median(hands):.2f} s)"
            f"   peak {hand_mb:7.0f} MiB   (benchmarks/hand_written.sql, timed as imnm is: "
            f"connection, lookup views, query, close; process {hand_wall:.2f} s)",
            f"    of which the query  {hand_query_s:8.2f} s   "
            f"(median {statistics.median(hand_queries):.2f} s; ATTACH and the query alone)",
            f"  floor: DuckDB scan    {floor_s:8.2f} s   "
            f"(median {statistics.median(floors):.2f} s)"
            f"   peak {floor_mb:7.0f} MiB   "
            f"(columns the screen reads; process {floor_wall:.2f} s)",
            f"  screen / hand-written {screen_s / hand_s:8.2f} x time, "
            f"{screen_mb / hand_mb:.2f} x peak memory; worklist alone / hand-written "
            f"{worklist_s / hand_s:.2f} x; screen / the query alone "
            f"{screen_s / hand_query_s:.2f} x",
            f"  screen / floor        {fig['screen_over_floor']:8.2f} x",
            f"  per-child Python      {per_child_s:8.1f} s   EXTRAPOLATED from {pc_n} children "
            f"({float(pc_seconds):.2f} s; process peak {pc_mb:.0f} MiB)",
            f"  per-child / screen    {per_child_s / screen_s:8.1f} x"]
        if n == args.spark_size:
            parquet = work / f"omop-{n}-parquet"
            synth.write_omop(synth.population(n, 42), parquet)
            spark_s, spark_mb, spark_out = measure("spark", str(parquet), AS_OF)
            fig |= {"spark_local_s": spark_s, "spark_driver_peak_mib": spark_mb}
            lines.append(f"  Spark local[2]        {spark_s:8.2f} s   driver peak {spark_mb:5.0f}"
                         f" MiB (JVM not counted; includes start-up) -> {spark_out}")
        figures[str(n)] = fig
    if len(args.sizes) > 1 and not args.database:
        small, large = (figures[str(s)] for s in (min(args.sizes), max(args.sizes)))
        lines.append(f"\ncost per child, largest / smallest size: "
                     f"{large['screen_us_per_child'] / small['screen_us_per_child']:.2f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    stem = "screen-database" if args.database else "screen"  # a site's figures apart
    (results / f"{stem}.txt").write_text(text, encoding="utf-8")
    (results / f"{stem}.json").write_text(json.dumps(figures, indent=2) + "\n",
                                          encoding="utf-8")


if __name__ == "__main__":
    main()
