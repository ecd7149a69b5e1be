"""The literature table as data: recomputed totals against the published Total row, the
statistics against values computed by hand, and new cases."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from imnm.errors import InputError
from imnm.evidence import records, stats
from imnm.evidence.summary import summarise
from imnm.evidence.table import load_table
from imnm.patient import load_patient
from tests.conftest import EXAMPLES, FIXTURES

TABLE = load_table()
EXPORT = FIXTURES / "literature" / "dang_le_2025_export.txt"


def test_table_has_the_reviews_28_rows_and_84_children() -> None:
    assert len(TABLE.rows) == 28
    assert sum(r.patients for r in TABLE.rows) == 84
    assert len({r.id for r in TABLE.rows}) == 28


def test_recomputed_totals_match_the_published_total_row() -> None:
    # The published Total row, figure by figure (Wang & Liang 2023, Table 1).
    figures = {f.name: f for f in summarise(TABLE).figures}
    expected = {
        "patients": "84", "anti-HMGCR": "43", "anti-SRP": "41", "female": "58", "male": "18",
        "sex unknown": "8", "female:male": "3.2:1", "onset acute": "2",
        "onset subacute": "28", "onset chronic (printed 'Slow')": "14",
        "onset insidious": "24", "onset unknown": "16",
        "subacute share (text)": "41% (28/68)", "insidious share (text)": "35% (24/68)",
        "dysphagia (of all 84)": "21 (25%)", "heart (of all 84)": "12 (14%)",
        "skin (of all 84)": "33 (39%)", "first called a dystrophy (MD, CMD, LGMD, FSHD)": "15",
        "onset age: children with detailed data": "49",
    }
    for name, value in expected.items():
        assert figures[name].published == value, name
        assert figures[name].recomputed == value, name
        assert figures[name].agrees is True


def test_the_one_disagreement_is_reported() -> None:
    # Reading the ambiguous Mohassel row (see its note) gives 24 children with lung
    # involvement, one more than the published 23; the summary must say so.
    result = summarise(TABLE)
    assert [(d.name, d.published, d.recomputed) for d in result.disagreements] == [
        ("lung (of all 84)", "23 (27%)", "24 (29%)")]
    mean = next(f for f in result.figures if f.name == "mean onset age (years)")
    assert mean.agrees is None and mean.recomputed == "not recomputable"


def test_features_over_children_with_the_feature_reported() -> None:
    result = summarise(TABLE)
    assert result.features_over_known == {"dysphagia": (21, 47), "lung": (24, 58),
                                           "heart": (12, 51), "skin": (33, 62)}


def test_rows_that_needed_a_reading_say_so() -> None:
    notes = {r.id: r.note or "" for r in TABLE.rows}
    for row_id in ("tansley", "mohassel", "allenbach", "kishi_srp"):
        assert "AMBIGUOUS" in notes[row_id]


def test_wilson_interval_by_hand() -> None:
    # 6/18: p = 1/3, z = 1.959964; centre = (p + z^2/2n) / (1 + z^2/n) = 0.36264,
    # half-width = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) = 0.19986 -> 0.1628-0.5625
    result = stats.wilson(6, 18)
    assert result.low == pytest.approx(0.1628, abs=2e-4)
    assert result.high == pytest.approx(0.5625, abs=2e-4)
    assert stats.wilson(0, 0).proportion is None


def test_fisher_exact_by_hand() -> None:
    # [[3, 1], [1, 3]]: margins 4/4, P(a) = C(4,a)^2 / 70 = 1, 16, 36, 16, 1 (/70);
    # observed a = 3 (16/70); two-sided p sums P <= 16/70: (1 + 16 + 16 + 1) / 70 = 0.4857.
    odds, p = stats.fisher(3, 1, 1, 3)
    assert odds == pytest.approx(9.0)
    assert p == pytest.approx(34 / 70)


def _fisher_by_definition(a: int, b: int, c: int, d: int) -> float:
    n, row1, col1 = a + b + c + d, a + b, a + c

    def prob(x: int) -> float:
        return math.comb(col1, x) * math.comb(n - col1, row1 - x) / math.comb(n, row1)

    observed = prob(a)
    lo, hi = max(0, row1 + col1 - n), min(row1, col1)
    return sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= observed * (1 + 1e-7))


def test_anti_srp_against_anti_hmgcr() -> None:
    comparisons = {c.feature: c for c in stats.compare(TABLE)}
    lung = comparisons["lung"]
    assert (lung.hmgcr.positive, lung.hmgcr.known) == (6, 29)
    assert (lung.srp.positive, lung.srp.known) == (18, 29)
    assert lung.p_value == pytest.approx(_fisher_by_definition(18, 11, 6, 23))
    assert lung.p_value < 0.01
    assert comparisons["dysphagia"].p_value > 0.05  # the review's claim is weak here
    assert comparisons["heart"].p_value > 0.05
    for comp in comparisons.values():
        assert comp.srp.low is not None and comp.srp.high is not None
        assert comp.srp.low <= comp.srp.proportion <= comp.srp.high  # type: ignore[operator]


def test_parse_the_seed_export() -> None:
    record = records.parse_export(EXPORT.read_text(encoding="utf-8"))
    assert record.doi == "10.1016/j.nmd.2025.105484"
    assert record.title.startswith("Rituximab in treatment-refractory")
    assert record.title_as_exported.startswith("20PRituximab")
    assert record.authors == ("H. Dang", "S. Le")
    assert str(record.date) == "2025-09-01" and record.journal == "Neuromuscular Disorders"
    assert record.abstract is not None and "<div>" not in record.abstract


@pytest.mark.parametrize(("text", "field"), [
    ('{"title": "x"}', "doi"),
    ('{"doi": "10.1/xx", "title": ""}', "title"),
    ('{"title": "t", "doi": "10.1234/a", "publicationDate": "someday"}', "publicationDate"),
    ("not json", "(line 1, column 1)"),
])
def test_bad_exports_name_the_field(text: str, field: str) -> None:
    with pytest.raises(InputError) as caught:
        records.parse_export(text)
    assert caught.value.problems[0].field == field


def test_shipped_case_records_are_the_examples() -> None:
    shipped = records.cases()
    assert [c.patient.id for c in shipped] == ["dang-le-2025-case-1", "dang-le-2025-case-2"]
    for case, name in zip(shipped, ("case-series-2025-patient-1", "case-series-2025-patient-2"),
                          strict=True):
        example = load_patient((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
        assert case.patient == example
    assert records.literature()[0].id == shipped[0].literature_id


def test_summary_with_the_case_series_added() -> None:
    result = summarise(TABLE, records.cases(), include_cases=True)
    assert result.with_cases["patients"] == "86"
    assert result.with_cases["antibody HMGCR"] == "44"
    assert result.with_cases["antibody seronegative"] == "1"
    assert result.with_cases["first called a dystrophy"] == "16/86 (19%)"
    assert [c.antibody for c in result.cases] == ["HMGCR", "seronegative"]
    assert summarise(TABLE).with_cases == {}


def imnm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imnm.cli", *args], capture_output=True,
                          text=True, check=False, env=env)


def test_add_is_idempotent_and_cases_join_the_summary(tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = imnm("evidence", "add", str(EXPORT), "--store", str(store))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("added: doi_10_1016_j_nmd_2025_105484")
    again = imnm("evidence", "add", str(EXPORT), "--store", str(store))
    assert again.stdout.startswith("already present, unchanged")
    assert len(list((store / "literature").glob("*.json"))) == 1
    assert not list((store / "literature").glob(".*tmp"))
    case = imnm("evidence", "add-case", str(EXAMPLES / "seronegative-imnm-cardiac.json"),
                "--literature",
                "doi_10_1016_j_nmd_2025_105484", "--store", str(store))
    assert case.returncode == 0, case.stderr
    doc = json.loads(imnm("evidence", "summary", "--with-cases", "--store", str(store),
                          "--format", "json").stdout)
    assert doc["with_cases"]["patients"] == "87"
    assert doc["with_cases"]["antibody seronegative"] == "2"
    orphan = imnm("evidence", "add-case", str(EXAMPLES / "jdm-classic.json"), "--literature",
                  "doi_10_9999_nothing", "--store", str(store))
    assert orphan.returncode == 2 and "literature_id" in orphan.stderr


def test_summary_and_compare_commands(tmp_path: Path) -> None:
    run = imnm("evidence", "summary")
    assert run.returncode == 0
    assert "lung (of all 84): published 23 (27%), recomputed 24 (29%)" in run.stdout
    figure = tmp_path / "compare.svg"
    run = imnm("evidence", "compare", "--figure", str(figure))
    assert run.returncode == 0, run.stderr
    assert "lung          6/29" in run.stdout
    assert figure.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    doc = json.loads(imnm("evidence", "compare", "--format", "json").stdout)
    assert [c["feature"] for c in doc["comparisons"]] == ["dysphagia", "lung", "heart", "skin"]


def test_garbled_initial_diagnosis_cells_are_read_the_same_way() -> None:
    # Issue 11 item 11: Allenbach's extracted cell "41M; ... 4LGMD" is "4IM;4LGMD", the same
    # form as Liang's "4IM;3MD": inflammatory myopathy first for four, not "not available".
    rows = {r.id: dict(r.initial_diagnoses) for r in TABLE.rows}
    assert rows["allenbach"] == {"IM": 4, "LGMD": 4}
    assert rows["liang"]["IM"] == 4 and rows["liang"]["MD"] == 3
