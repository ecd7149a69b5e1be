"""One fixture file per failure mode, run by one parametrised test.

Each case names the field the error must point at and a piece of the value and of the
expectation it must show. The CLI must exit 2 with one line per problem and no traceback.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from imnm import InputError, load_patient
from tests.conftest import FIXTURES

BAD = FIXTURES / "bad"

CASES = {
    "malformed-json.json": ("(line 2, column 1)", "malformed JSON", "valid JSON"),
    "not-an-object.json": ("(file)", "list", "a JSON object"),
    "wrong-type.json": ("age_years", "'ten'", "valid number"),
    "unknown-unit.json": ("ck.0.unit", "mg/dL", "U/L"),
    "ck-below-zero.json": ("ck.0.value", "-5", "between 0"),
    "weight-zero.json": ("weight.value", "0 kg", "from 0.5 to 300 kg"),
    "height-wrong-dimension.json": ("height.unit", "kg", "unit of length"),
    "onset-in-future.json": ("onset.date", "2025-06-01", "on or before as_of"),
    "age-over-25.json": ("age_years", "31", "at most 25 years"),
    "birth-date-over-25.json": ("birth_date", "1990-02-01", "at most 25 years"),
    "unknown-field.json": ("colour", "blue", "no such field"),
    "unknown-antibody.json": ("antibodies.anti-XYZ", "anti-XYZ", "HMGCR"),
    "bad-antibody-status.json": ("antibodies.HMGCR.status", "maybe", "not_tested"),
    "bad-icd10-code.json": ("diagnoses.0.code", "G7I.039", "ICD-10-CM"),
    "bad-snomed-check-digit.json": ("diagnoses.0.code", "73297008", "Verhoeff"),
    "mrc-out-of-range.json": ("weakness.proximal_upper", "7", "less than or equal to 5"),
    "onset-pattern-disagrees.json": ("onset.pattern", "acute", "insidious"),
    "missing-id.json": ("id", "(missing)", "required"),
    "id-with-name.json": ("id", "Jane Doe", "no names"),
    "unknown-drug.json": ("treatments.0.drug", "unicorn dust", "methotrexate"),
    "impossible-date.json": ("ck.0.date", "2024-13-45", "valid date"),
}


def test_every_fixture_has_a_case() -> None:
    assert {p.name for p in BAD.glob("*.json")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_names_field_value_and_expectation(name: str) -> None:
    field, value, expected = CASES[name]
    with pytest.raises(InputError) as caught:
        load_patient((BAD / name).read_text(encoding="utf-8"))
    problems = caught.value.problems
    matching = [p for p in problems if p.field == field]
    assert matching, f"no problem for field {field!r}: {problems}"
    assert value in matching[0].value
    assert expected in matching[0].expected


@pytest.mark.parametrize("name", ["malformed-json.json", "ck-below-zero.json",
                                  "age-over-25.json", "unknown-unit.json"])
def test_cli_exits_2_without_traceback(name: str) -> None:
    run = subprocess.run([sys.executable, "-m", "imnm.cli", "assess", str(BAD / name)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    field = CASES[name][0]
    assert f"{name}: {field}: got " in run.stderr
    assert run.stdout == ""


def test_notes_never_echoed_in_errors() -> None:
    data = {"id": "r1", "age_years": 9, "notes": "SECRET clinical note",
            "ck": [{"value": -1}]}
    with pytest.raises(InputError) as caught:
        load_patient(data)
    assert "SECRET" not in str(caught.value)
    assert str(caught.value).startswith("record r1: ")


def test_several_problems_reported_together() -> None:
    data = {"id": "r2", "age_years": "ten", "sex": "robot", "weakness": {"neck_flexors": 9}}
    with pytest.raises(InputError) as caught:
        load_patient(data)
    fields = {p.field for p in caught.value.problems}
    assert {"age_years", "sex", "weakness.neck_flexors"} <= fields


def test_good_and_bad_files_together_keep_the_good_output(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import EXAMPLES

    run = subprocess.run(
        [sys.executable, "-m", "imnm.cli", "assess", "--format", "json",
         str(EXAMPLES / "jdm-classic.json"), str(BAD / "weight-zero.json")],
        capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert '"patient_id": "example-jdm"' in run.stdout
    assert "weight-zero.json: weight.value" in run.stderr
