"""The command line against hostile and broken files (issue 12). Each case crashed with a
traceback; each must now exit 2 with one line naming the input and the problem."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, FIXTURES

SYNTHEA = FIXTURES / "external" / "synthea27nj-omop54"


def imnm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imnm.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, check=False)


def refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no message"
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def _bundle(*resources: dict[str, object]) -> dict[str, object]:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "2012-01-01"}
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in (patient, *resources)]}


@pytest.mark.parametrize(("content", "words"), [
    ("[" * 100_000 + "]" * 100_000, ["nested"]),
    (json.dumps(_bundle({"resourceType": 5})), ["resourceType", "FHIR R4 resource type"]),
    (json.dumps(_bundle({"resourceType": "Spaceship"})), ["'Spaceship'"]),
    (json.dumps({"id": "x", "diagnoses": [{"label": "a" * 10_000_001}]}),
     ["diagnoses.0.label", "at most 10000 characters"]),
], ids=["deeply-nested", "resource-type-5", "spaceship", "10-MB-label"])
def test_hostile_patient_files(tmp_path: Path, content: str, words: list[str]) -> None:
    path = tmp_path / "in.json"
    path.write_text(content, encoding="utf-8")
    refused(imnm("assess", str(path)), str(path), *words)


def test_a_null_value_is_no_value(tmp_path: Path) -> None:
    observation = {"resourceType": "Observation", "id": "o1", "status": "final",
                   "code": {"coding": [{"system": "urn:imnm:fact", "code": "onset.date"}]},
                   "subject": {"reference": "Patient/p1"}, "valueDateTime": None}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_bundle(observation)), encoding="utf-8")
    result = imnm("assess", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr[-1500:]
    assert "onset" not in json.loads(result.stdout)["classification"]["enmc_2017"].get(
        "facts", {})


def _broken_omop(tmp_path: Path) -> dict[str, Path]:
    cases: dict[str, Path] = {}
    cases["random-bytes.duckdb"] = tmp_path / "random.duckdb"
    cases["random-bytes.duckdb"].write_bytes(os.urandom(20_000))
    cases["text.duckdb"] = tmp_path / "text.duckdb"
    cases["text.duckdb"].write_text("I am not a database\n", encoding="utf-8")
    folder = tmp_path / "parquet"
    folder.mkdir()
    (folder / "person.parquet").write_bytes(b"PAR1" + os.urandom(200))
    cases["corrupt-parquet"] = folder
    return cases


@pytest.mark.parametrize("case", ["random-bytes.duckdb", "text.duckdb", "corrupt-parquet"])
def test_broken_omop_inputs(tmp_path: Path, case: str) -> None:
    path = _broken_omop(tmp_path)[case]
    refused(imnm("screen", "--omop", str(path)), path.name)


def test_broken_fhir_inputs(tmp_path: Path) -> None:
    ndjson = tmp_path / "ndjson"
    ndjson.mkdir()
    (ndjson / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"a"}\n{not json\n')
    refused(imnm("screen", "--fhir", str(ndjson)), "Patient.ndjson", "Malformed JSON")
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "Patient.ndjson.gz").write_bytes(b"\x1f\x8b" + os.urandom(60))
    refused(imnm("screen", "--fhir", str(gz)), "GZIP")
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    (bundles / "child.json.gz").write_bytes(b"\x1f\x8b" + os.urandom(60))
    refused(imnm("screen", "--fhir", str(bundles)), "child.json.gz", "not readable JSON")
    nested = tmp_path / "nested"
    nested.mkdir()
    deep: dict[str, object] = {"resourceType": "Bundle", "type": "collection", "entry": []}
    for _ in range(300):
        deep = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": deep}]}
    (nested / "child.json").write_text(json.dumps(deep), encoding="utf-8")
    refused(imnm("screen", "--fhir", str(nested)), "child.json", "nested")


def test_text_in_number_and_date_columns_is_counted_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "omop"
    shutil.copytree(SYNTHEA, folder)

    def spoil(table: str, column: int, value: str) -> None:
        path = folder / f"{table}.csv.gz"
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        for i in range(1, 5):
            cells = lines[i].split(",")
            cells[column] = value
            lines[i] = ",".join(cells)
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    spoil("PERSON", 2, "twenty")
    spoil("MEASUREMENT", 3, "not-a-date")
    report = tmp_path / "report.json"
    result = imnm("screen", "--omop", str(folder), "--report", str(report))
    assert result.returncode == 0, result.stderr[-1500:]
    unread = {(c["input"], c["item"]): c["count"]
              for c in json.loads(report.read_text())["coverage"] if c["unread"]}
    assert unread[("person", "unreadable_year_of_birth")] == 4
    assert unread[("measurement", "unreadable_measurement_date")] == 4


@pytest.mark.parametrize("target", ["/proc/imnm-test.csv", "{folder}"],
                         ids=["unwritable", "a-folder"])
def test_unwritable_outputs_are_refused_before_the_run(tmp_path: Path, target: str) -> None:
    out = target.format(folder=tmp_path)
    for option in ("--out", "--aggregate", "--report"):
        refused(imnm("screen", "--omop", str(SYNTHEA), option, out), option, repr(out))


def test_spark_names_that_do_not_exist(spark: object) -> None:
    from imnm.screen.engines import InputUnusable
    from imnm.screen.run import run_screen

    with pytest.raises(InputUnusable, match="nosuchdb"):
        run_screen("omop", "spark:nosuchdb", engine=spark)  # type: ignore[arg-type]


def test_the_evidence_store_refuses_files_and_planted_ids(tmp_path: Path) -> None:
    a_file = tmp_path / "store-file"
    a_file.write_text("x")
    case = str(EXAMPLES / "jdm-classic.json")
    refused(imnm("evidence", "summary", "--with-cases", "--store", str(a_file)),
            "--store", "not a file")
    refused(imnm("evidence", "add-case", case, "--literature", "doi_10_1016_j_nmd_2025_105484",
                 "--store", str(a_file)), "--store")
    store = tmp_path / "store"
    (store / "cases").mkdir(parents=True)
    (store / "cases" / "broken.json").write_text("garbage")
    refused(imnm("evidence", "summary", "--with-cases", "--store", str(store)), "broken.json")
    (store / "cases" / "broken.json").unlink()
    # A literature record planted with an id that climbs out of the store.
    shipped = json.loads((Path(__file__).parent.parent / "src" / "imnm" / "evidence" / "data"
                          / "cases" / "dang_le_2025.json").read_text())["literature"]
    escape = str(tmp_path / "escaped")
    (store / "literature").mkdir()
    (store / "literature" / "planted.json").write_text(json.dumps(
        shipped | {"id": f"../../../../../../..{escape}"}))
    result = imnm("evidence", "add-case", case, "--literature",
                  f"../../../../../../..{escape}", "--store", str(store))
    refused(result, "--literature")
    assert not list(tmp_path.glob("escaped*"))
    refused(imnm("evidence", "add-case", case, "--literature", "doi_10_1016_j_nmd_2025_105484",
                 "--store", str(store)), "planted.json")


def test_a_spark_failure_says_the_java_error_not_only_the_py4j_call() -> None:
    """A Py4J error's first line names only the call (seen on a 1M-children Spark run); the
    message shows the Java error under it, with quoted values blanked."""
    from imnm.screen.run import _engine_message

    text = ("An error occurred while calling o220.collectToPython.\n"
            ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 "
            "failed: value 'Jane Doe' could not be cast\n\tat org.apache.spark.Foo(Foo.java:1)")
    message = _engine_message(RuntimeError(text))
    assert message.startswith("org.apache.spark.SparkException: Job aborted")
    assert "Jane Doe" not in message


def test_json_nested_exactly_to_the_limit_is_read_and_one_deeper_is_refused() -> None:
    from imnm.jsonio import MAX_JSON_DEPTH, depth_problem

    def nested(depth: int, container: str) -> object:
        node: object = 1
        for _ in range(depth):
            node = [node, "x"] if container == "list" else {"k": node, "s": "x"}
        return node

    for container in ("list", "dict"):
        assert depth_problem(nested(MAX_JSON_DEPTH, container)) is None
        problem = depth_problem(nested(MAX_JSON_DEPTH + 1, container), "bundle")
        assert problem is not None and problem.field == "bundle"
        assert f"at most {MAX_JSON_DEPTH}" in problem.expected
    # a shallow but wide document (the depth is of the deepest branch, not of the last one)
    wide = {"a": [nested(MAX_JSON_DEPTH, "dict")], "b": 1}
    assert depth_problem(wide) is not None
    assert depth_problem({"a": [[1]] * 1000, "b": {"c": {}}}) is None
