"""The population screen: snapshots of its SQL, planted cases against ground truth, the
per-child rules child by child, DuckDB against Spark, OMOP against FHIR, missing inputs, and
external data the project did not generate."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from imnm.knowledge import load_knowledge
from imnm.screen import per_child, synth
from imnm.screen.definition import (
    Parameters,
    ScreenDefinitionError,
    _template,
    _values_view,
    lookup_views,
    render,
    split,
)
from imnm.screen.engines import DuckDBEngine, InputUnusable, SparkEngine
from imnm.screen.run import ScreenResult, run_screen, write_worklist
from tests.conftest import FIXTURES

KB = load_knowledge()
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
EXTERNAL = FIXTURES / "external"
N, SEED = 3000, 20251123


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synth")
    paths = {"duckdb": root / "omop.duckdb", "parquet": root / "omop", "fhir": root / "fhir"}
    synth.write_omop(synth.population(N, SEED), paths["duckdb"])
    synth.write_omop(synth.population(N, SEED), paths["parquet"])
    synth.write_fhir(synth.population(N, SEED), paths["fhir"], gzip_files=True)
    return paths


def truth(path: Path) -> set[tuple[str, str]]:
    with (path / "truth.csv").open(encoding="utf-8") as handle:
        return {(row["person_id"], tier) for row in csv.DictReader(handle)
                for tier in row["expected_tiers"].split(";") if tier}


def pairs(result: ScreenResult) -> set[tuple[str, str]]:
    return {(r.person_id, r.tier) for r in result.rows}


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
@pytest.mark.parametrize("source", ["omop", "fhir"])
def test_generated_sql_matches_snapshot(engine: str, source: str, request: pytest.FixtureRequest
                                       ) -> None:
    params = Parameters.from_knowledge(KB, synth.AS_OF)
    script = render(KB, params, engine, source).script()  # type: ignore[arg-type]
    snapshot = SNAPSHOTS / f"screen.{source}.{engine}.sql"
    if request.config.getoption("--update-snapshots"):
        SNAPSHOTS.mkdir(exist_ok=True)
        snapshot.write_text(script, encoding="utf-8")
    assert script == snapshot.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["lookups", "stage_omop.sql", "stage_fhir.sql",
                                  "coverage_results.sql", "coverage_omop.sql",
                                  "coverage_fhir.sql", "screen.sql"])
def test_the_quick_statement_split_agrees_with_sqlglots_parser(name: str) -> None:
    """DuckDB gets imnm's SQL split at ';' line ends, unparsed: each piece must be exactly
    one statement, the same one SQLGlot's parser finds."""
    import sqlglot

    sql = lookup_views(KB, Parameters.from_knowledge(KB, synth.AS_OF)) if name == "lookups" \
        else _template(name)
    pieces = split(sql)
    parsed = [p for p in sqlglot.parse(sql, read="duckdb") if p is not None]
    assert len(pieces) == len(parsed) > 0
    for piece, tree in zip(pieces, parsed, strict=True):
        one = [p for p in sqlglot.parse(piece, read="duckdb") if p is not None]
        assert len(one) == 1
        assert one[0].sql(dialect="duckdb") == tree.sql(dialect="duckdb")


def test_a_line_break_in_a_knowledge_value_is_refused_not_split() -> None:
    with pytest.raises(ScreenDefinitionError, match="line break"):
        _values_view("v", ("a",), [("two\nlines",)])


def test_every_planted_case_found_and_confirmed_dystrophies_left_alone(
        population: dict[str, Path]) -> None:
    result = run_screen("fhir", str(population["fhir"]), as_of=synth.AS_OF)
    expected = truth(population["fhir"])
    assert pairs(result) == expected
    assert len(expected) >= 10
    categories = {}
    with (population["fhir"] / "truth.csv").open(encoding="utf-8") as handle:
        categories = {row["person_id"]: row["category"] for row in csv.DictReader(handle)}
    listed = {r.person_id for r in result.rows}
    for pid, category in categories.items():
        if category in ("dmd_confirmed", "lgmd_confirmed", "jdm", "dystrophy_label_normal_ck",
                        "imnm_treated", "imnm_corticosteroid_recent", "background"):
            assert pid not in listed, (pid, category)
    assert result.population == N


def test_screen_agrees_with_the_per_child_rules_child_by_child(
        population: dict[str, Path]) -> None:
    engine = DuckDBEngine()
    try:
        result = run_screen("omop", str(population["duckdb"]), engine=engine,
                            as_of=synth.AS_OF)
        params = Parameters.from_knowledge(KB, synth.AS_OF)
        by_rules = set()
        seen = 0
        for patient in per_child.patients(engine, KB, synth.AS_OF, params.max_age_years):
            seen += 1
            by_rules |= {(patient.id, tier) for tier in per_child.tiers(patient, KB, params)}
    finally:
        engine.close()
    assert seen == N
    assert pairs(result) == by_rules


def test_omop_and_fhir_routes_give_the_same_worklist(population: dict[str, Path]) -> None:
    omop = run_screen("omop", str(population["duckdb"]), as_of=synth.AS_OF)
    fhir = run_screen("fhir", str(population["fhir"]), as_of=synth.AS_OF)
    # OMOP rows carry the source ICD-10-CM code and the SNOMED concept it maps to; FHIR the
    # ICD-10-CM code only. Everything else is the same, child by child.
    assert [r.model_copy(update={"diagnosis_codes": None}) for r in omop.rows] == [
        r.model_copy(update={"diagnosis_codes": None}) for r in fhir.rows]
    for a, b in zip(omop.rows, fhir.rows, strict=True):
        assert set((b.diagnosis_codes or "").split(";")) <= set(
            (a.diagnosis_codes or "").split(";"))
    # The synthetic data are coded as real data: products, unit concepts, numeric antibodies.
    used = {(c.input, c.item): c.count for c in omop.coverage}
    assert used[("drug_exposure", "in_code_set_by_concept_ancestor")] > 0
    assert used[("measurement", "antibody_by_reference_range")] > 0
    assert used[("measurement", "outside_every_set")] > 10 * N
    assert used[("measurement", "ck_unit_unreadable")] == 0
    assert {(c.input, c.item): c.count for c in fhir.coverage}[
        ("Medication", "in_code_set_by_display_text")] > 0


# OMOP Parquet on Spark against DuckDB: tests/test_spark_cluster.py, on a real cluster.
@pytest.mark.parametrize("source", ["fhir"])
def test_duckdb_and_spark_worklists_are_identical(population: dict[str, Path],
                                                  spark: SparkEngine, source: str) -> None:
    location = str(population["parquet" if source == "omop" else "fhir"])
    on_duckdb = run_screen(source, location, as_of=synth.AS_OF)  # type: ignore[arg-type]
    on_spark = run_screen(source, location, engine=spark,  # type: ignore[arg-type]
                          as_of=synth.AS_OF)
    assert on_spark.rows == on_duckdb.rows
    assert on_spark.population == on_duckdb.population == N


def _reads_each_input_once(spark: SparkEngine) -> None:
    """Spark inlines a CTE at each place it is read. The worklist read the staged views 31
    times (the facts once per tier, each rule's facts twice) and the coverage counts read the
    event tables again at each use of their tally. Now the worklist reads each staged view
    once (the labels twice: facts and codes) and the person table once; the coverage counts
    read no event table (the tally is staged on Spark, not on DuckDB); a join with a lookup
    view is a broadcast, not a shuffle of the rows looked up."""
    import re

    from imnm.knowledge import load_knowledge
    from imnm.screen.definition import Parameters, render
    from imnm.screen.run import STAGED_WHERE_CTES_INLINE

    kb = load_knowledge()
    query = render(kb, Parameters.from_knowledge(kb, synth.AS_OF), "spark", "omop").query
    worklist = spark.spark.sql(query)._jdf.queryExecution().optimizedPlan().toString()
    assert worklist.count("LogicalRDD") == 4
    assert len(re.findall(r"Relation \[[^\]]*\] parquet", worklist)) == 1
    coverage = spark.spark.sql("SELECT * FROM imnm_coverage")._jdf.queryExecution() \
        .optimizedPlan().toString()
    read = re.findall(r"Relation \[([^\]]*)\] parquet", coverage)
    assert read and not any(c in r for r in read for c in (
        "measurement_concept_id", "condition_concept_id", "drug_concept_id"))
    for view in STAGED_WHERE_CTES_INLINE["omop"]:
        assert "LogicalRDD" in spark.spark.table(view)._jdf.queryExecution() \
            .optimizedPlan().toString(), view
    looked_up = spark.spark.sql(
        "SELECT COUNT(*) FROM imnm_measurement_hits AS h "
        "LEFT JOIN imnm_unit_factors AS f ON f.spelling = h.unit_source")
    assert "BroadcastHashJoin" in looked_up._jdf.queryExecution().executedPlan().toString()


def test_tables_in_a_spark_session(population: dict[str, Path], spark: SparkEngine) -> None:
    # A data team's session already holds the OMOP tables (here: temporary views).
    for table in ("person", "concept", "concept_ancestor", "concept_relationship",
                  "condition_occurrence", "measurement", "drug_exposure"):
        frame = spark.spark.read.parquet(str(population["parquet"] / f"{table}.parquet"))
        frame.createOrReplaceTempView(table)
    in_session = run_screen("omop", "spark:", engine=spark, as_of=synth.AS_OF)
    _reads_each_input_once(spark)
    from_files = run_screen("omop", str(population["parquet"]), as_of=synth.AS_OF)
    assert in_session.rows == from_files.rows and len(in_session.rows) >= 10


def test_spark_broadcasts_only_what_it_has_measured_small(population: dict[str, Path],
                                                         spark: SparkEngine) -> None:
    """On a realistic vocabulary Spark's static estimate made the concept_id column of 3
    million concepts look small; it was broadcast and a default 1 GB driver ran out of memory
    in the coverage counts (seen at 1M children). Joins are planned without broadcasts, and
    adaptive execution broadcasts a side once a finished stage shows it small."""
    concept = spark.spark.read.parquet(str(population["parquet"] / "concept.parquet"))
    concept.createOrReplaceTempView("concept")
    spark.spark.range(0, 50).withColumnRenamed("id", "concept_id") \
        .createOrReplaceTempView("used_ids")
    frame = spark.spark.sql("SELECT COUNT(*) FROM used_ids AS u "
                            "JOIN concept AS c ON c.concept_id = u.concept_id")
    planned = frame._jdf.queryExecution().executedPlan().toString()
    assert "BroadcastHashJoin" not in planned and "SortMergeJoin" in planned
    frame.collect()
    final = frame._jdf.queryExecution().executedPlan().toString()
    assert "isFinalPlan=true" in final and "BroadcastHashJoin" in final


def test_duckdb_stages_only_what_it_would_compute_twice(population: dict[str, Path]) -> None:
    """DuckDB computes a CTE read twice once, so the views staged for Spark stay views."""
    from imnm.screen.engines import DuckDBEngine
    from imnm.screen.run import STAGED_VIEWS, STAGED_WHERE_CTES_INLINE

    engine = DuckDBEngine()
    try:
        run_screen("omop", str(population["parquet"]), engine=engine, as_of=synth.AS_OF)
        tables = {r["table_name"] for r in engine.rows(
            "SELECT table_name FROM duckdb_tables() WHERE temporary")}
    finally:
        engine.close()
    assert {f"{v}__computed" for v in STAGED_VIEWS["omop"]} <= tables
    assert not {f"{v}__computed" for v in STAGED_WHERE_CTES_INLINE["omop"]} & tables


def test_missing_tables_make_children_not_assessable(population: dict[str, Path],
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "omop"
    folder.mkdir()
    for table in ("person", "concept", "condition_occurrence", "drug_exposure"):
        (folder / f"{table}.parquet").write_bytes(
            (population["parquet"] / f"{table}.parquet").read_bytes())
    result = run_screen("omop", str(folder), as_of=synth.AS_OF)
    assert result.missing == ["measurement"]
    assert {r.tier for r in result.rows} == {"not_assessable"}
    labelled = {pid for pid, _ in truth(population["fhir"])
                if _category(population, pid) in ("imnm_mislabelled_untested",
                                                   "myopathy_label_untested")}
    assert labelled <= {r.person_id for r in result.rows}
    assert all(r.reasons.startswith("missing input: measurement") for r in result.rows)


def _category(population: dict[str, Path], pid: str) -> str:
    with (population["fhir"] / "truth.csv").open(encoding="utf-8") as handle:
        return next(r["category"] for r in csv.DictReader(handle) if r["person_id"] == pid)


def test_missing_person_table_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "concept.csv").write_text("concept_id,concept_code,vocabulary_id,concept_name\n")
    with pytest.raises(InputUnusable, match="table person is missing"):
        run_screen("omop", str(tmp_path), as_of=synth.AS_OF)


def test_threshold_parameter_comes_from_the_knowledge(population: dict[str, Path]) -> None:
    strict = run_screen("omop", str(population["duckdb"]), as_of=synth.AS_OF,
                        parameters={"suspicion_min_ck_multiple_of_uln": 1000})
    assert not [r for r in strict.rows if r.tier == "test_for_antibodies"]


def test_external_omop_sample_runs_and_flags_no_one() -> None:
    # Synthea27Nj: 28 synthetic persons, no myopathy codes and no CK (read its SOURCE notes).
    result = run_screen("omop", str(EXTERNAL / "synthea27nj-omop54"), as_of=dt.date(2023, 1, 1))
    assert result.rows == [] and result.missing == []
    with gzip.open(EXTERNAL / "synthea27nj-omop54" / "PERSON.csv.gz", "rt") as handle:
        young = [r for r in csv.DictReader(handle) if int(r["year_of_birth"]) >= 1998]
    assert result.population == len(young) > 0  # born 1998 or later: 25 or younger in 2023


def test_external_bulk_fhir_partial_export_says_what_is_missing() -> None:
    result = run_screen("fhir", str(EXTERNAL / "smart-bulk-ndjson-10"), as_of=dt.date(2021, 6, 1))
    assert result.missing == ["Observation"]
    assert result.rows == []
    with gzip.open(EXTERNAL / "smart-bulk-ndjson-10" / "Patient.000.ndjson.gz", "rt") as handle:
        births = [dt.date.fromisoformat(json.loads(line)["birthDate"]) for line in handle]
    young = [b for b in births if (dt.date(2021, 6, 1) - b).days / 365.25 <= 25]
    assert len(births) == 13 and result.population == len(young) > 0


def test_worklist_files_and_aggregate_suppression(population: dict[str, Path],
                                                  tmp_path: Path) -> None:
    result = run_screen("omop", str(population["duckdb"]), as_of=synth.AS_OF)
    csv_path = write_worklist(result, tmp_path / "w.csv")
    with csv_path.open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(result.rows)
    import pyarrow.parquet as pq

    table = pq.read_table(write_worklist(result, tmp_path / "w.parquet"))
    assert table.num_rows == len(result.rows)
    rows = result.aggregate()
    cells = {(a["tier"], a["sex"], a["age_band"]): a["count"] for a in rows
             if a["section"] == "worklist"}
    assert len(cells) == 4 * 3 * 6  # every tier, sex and age band, zeros included
    assert all(v == "0" or v == "<10" or int(v) >= 10 for v in cells.values())
    assert "<10" in cells.values()
    on_list = Counter((r.tier, r.sex, r.age_years // 5 * 5) for r in result.rows
                      if r.age_years is not None and r.age_years < 20)
    for (tier, sex, start), n in on_list.items():
        assert cells[(tier, sex, f"{start}-{start + 4}")] == (str(n) if n >= 10 else "<10")
    coverage = {a["item"]: int(a["count"]) for a in rows if a["section"] == "coverage"}
    assert coverage["measurement.rows"] == coverage["measurement.in_code_set"] + coverage[
        "measurement.outside_every_set"] + coverage["measurement.concept_id_0"] + coverage[
        "measurement.concept_not_in_vocabulary"]
    with pytest.raises(ValueError, match=r"expected \.csv or \.parquet"):
        write_worklist(result, tmp_path / "w.txt")


def test_screen_command_end_to_end(population: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "worklist.csv"
    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", str(population["duckdb"]),
         "--as-of", "2025-06-30", "--out", str(out), "--aggregate", str(tmp_path / "agg.csv")],
        capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "per tier:" in run.stdout and out.exists()
    bad = subprocess.run([sys.executable, "-m", "imnm.cli", "screen"], capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2 and "exactly one of --omop" in bad.stderr
    spark_file = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", str(population["duckdb"]),
         "--engine", "spark"], capture_output=True, text=True, check=False)
    assert spark_file.returncode == 2 and "Spark cannot read a DuckDB file" in spark_file.stderr


def test_synth_command(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "synth", "fhir", "--patients", "200",
                          "--seed", "5", "--out", str(tmp_path / "f")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "f" / "Patient.000.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200 and json.loads(lines[0])["resourceType"] == "Patient"
    again = tmp_path / "g"
    synth.write_fhir(synth.population(200, 5), again)
    assert (again / "Patient.000.ndjson").read_text(encoding="utf-8").splitlines() == lines


def test_the_worklist_puts_what_to_do_first_first_and_ids_in_numeric_order() -> None:
    # Issue 13: person ids sorted as text (10277 before 1271), review_dystrophy_label before
    # test_for_antibodies.
    from imnm.screen.run import WorklistRow, worklist_order

    def row(pid: str, tier: str) -> WorklistRow:
        return WorklistRow(person_id=pid, tier=tier, reasons="", sex=None, age_years=None,
                           diagnosis_codes=None,
                           peak_ck_u_per_l=None, peak_ck_multiple_of_uln=None,
                           anti_hmgcr="unknown", anti_srp="unknown",
                           days_on_corticosteroid_alone=None,
                           months_on_corticosteroid_alone=None)

    rows = [row("10277", "review_dystrophy_label"), row("1271", "review_dystrophy_label"),
            row("99", "test_for_antibodies"), row("abc", "test_for_antibodies")]
    ordered = [(r.tier, r.person_id) for r in sorted(rows, key=worklist_order)]
    assert ordered == [("test_for_antibodies", "99"), ("test_for_antibodies", "abc"),
                       ("review_dystrophy_label", "1271"), ("review_dystrophy_label", "10277")]


def test_each_staged_view_is_recognised_where_the_setup_defines_it() -> None:
    """The run computes each staged view right after its definition (views defined over
    uncomputed views cost a bind of the whole chain); it finds them by this."""
    import datetime as dt

    from imnm.knowledge import load_knowledge
    from imnm.screen.definition import Parameters, render
    from imnm.screen.run import STAGED_VIEWS, _created_view

    assert _created_view("-- a comment\nCREATE OR REPLACE TEMPORARY VIEW imnm_x AS\nSELECT 1") \
        == "imnm_x"
    assert _created_view('create or replace temp view "Imnm_Y" as select 1') == "imnm_y"
    assert _created_view("SELECT 'CREATE OR REPLACE TEMP VIEW imnm_z AS'") is None
    kb = load_knowledge()
    for engine in ("duckdb", "spark", "postgres"):
        for source in ("omop", "fhir"):
            rendered = render(kb, Parameters.from_knowledge(kb, dt.date(2025, 6, 30)), engine,
                              source)
            created = [_created_view(s) for s in rendered.setup]
            staged = [v for v in created if v in STAGED_VIEWS[source]]
            assert sorted(staged) == sorted(STAGED_VIEWS[source]), (engine, source)
