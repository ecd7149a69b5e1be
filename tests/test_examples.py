"""Every example runs, and its assessment matches the golden file that was read and checked
against the sources (docs/examples.md says what each golden file was checked for).

Regenerate with ``pytest tests/test_examples.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imnm import assess, load_patient
from tests.conftest import EXAMPLES, GOLDEN

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


def test_there_are_enough_examples() -> None:
    assert len(EXAMPLE_FILES) >= 8


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_matches_golden(path: Path, update_golden: bool) -> None:
    result = assess(load_patient(path.read_text(encoding="utf-8"))).to_dict()
    golden = GOLDEN / f"{path.stem}.json"
    if update_golden:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    assert result == expected


# The clinical expectations, stated independently of the golden files.
EXPECTED = {
    "case-series-2025-patient-1": ("anti_hmgcr_imnm", False, True),
    "case-series-2025-patient-2": ("seronegative_imnm", False, False),
    "duchenne-genetically-confirmed": ("not_imnm", False, False),
    "lgmd-label-never-tested": ("insufficient_data", True, False),
    "anti-srp-line-blot": ("anti_srp_imnm", False, False),
    "jdm-classic": ("not_imnm", False, False),
    "seronegative-imnm-cardiac": ("seronegative_imnm", False, False),
    "anti-hmgcr-units-and-food": ("anti_hmgcr_imnm", False, True),
    "hmgcr-gene-lgmd-r28": ("not_imnm", False, False),
    "myopathy-label-incomplete": ("insufficient_data", False, False),
}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_example_clinical_expectation(stem: str) -> None:
    cls, test_flag, review_flag = EXPECTED[stem]
    result = assess(load_patient((EXAMPLES / f"{stem}.json").read_text(encoding="utf-8")))
    assert result.classification.enmc_2017.cls == cls
    assert result.suspicion.test_for_imnm_antibodies is test_flag
    assert result.suspicion.review_dystrophy_label is review_flag


def test_case_series_patient_2_names_the_atypical_antibody() -> None:
    result = assess(load_patient(
        (EXAMPLES / "case-series-2025-patient-2.json").read_text(encoding="utf-8")))
    ids = [f.rule_id for f in result.findings]
    assert "differential.atypical_antibody" in ids
    assert "redflag.cardiac_evaluation" in ids and "redflag.cancer_screening" in ids
