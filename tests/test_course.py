"""Plans, the Total Improvement Score, refractory disease and the course commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imnm import assess, load_patient
from imnm.knowledge import load_knowledge
from imnm.patient import Visit
from imnm.report.treatment import render_plan
from imnm.rules import response, treatment
from imnm.testing import a_child
from tests.conftest import EXAMPLES, GOLDEN

KB = load_knowledge()
COURSE_EXAMPLE = EXAMPLES / "case-series-2025-patient-1-course.json"


def visit(date: str, **values: object) -> Visit:
    return Visit.model_validate({"date": date, **values})


def test_total_improvement_score_worked_example() -> None:
    # By hand from the published table (Rider 2017, Table 3), percent change = change / scale
    # range (enzyme: change / baseline):
    #   physician global 6 -> 2: 40% -> band >25-40 -> 17.5
    #   parent global 5 -> 4: 10% -> >5-15 -> 2.5
    #   MMT-8 50 -> 62 of 80: 15% -> >10-20 -> 20
    #   CHAQ 1.5 -> 1.2 of 3: 10% -> >5-15 -> 5
    #   CK 4000 -> 1000: 75% -> >40 -> 7.5
    #   extramuscular 3 -> 2: 10% -> >5-15 -> 7.5
    #   total 60: JDM thresholds 30/45/70 -> moderate; adult 20/40/60 -> major
    base = visit("2024-01-01", physician_global=6, patient_global=5, mmt8=50, chaq=1.5,
                 ck={"value": 4000}, extramuscular_global=3)
    follow = visit("2024-07-01", physician_global=2, patient_global=4, mmt8=62, chaq=1.2,
                   ck={"value": 1000}, extramuscular_global=2)
    tis, missing = response.total_improvement_score(base, follow, KB, juvenile=True)
    assert missing == () and tis is not None
    points = {m.measure: m.points for m in tis.measures}
    assert points == {"physician_global": 17.5, "patient_global": 2.5, "strength": 20,
                      "function": 5, "enzyme": 7.5, "extramuscular": 7.5}
    assert tis.total == 60 and tis.category == "moderate"
    adult, _ = response.total_improvement_score(base, follow, KB, juvenile=False)
    assert adult is not None and adult.category == "major"


def test_worsening_scores_zero_and_missing_measures_are_named() -> None:
    base = visit("2024-01-01", physician_global=2, mmt8=60)
    follow = visit("2024-03-01", physician_global=5, cmas=40)
    tis, missing = response.total_improvement_score(base, follow, KB, juvenile=True)
    assert tis is None
    assert "patient_global" in missing and any(m.startswith("strength") for m in missing)
    worse_a = visit("2024-01-01", physician_global=2, patient_global=2, mmt8=60, chaq=1,
                    ck={"value": 500}, extramuscular_global=1)
    worse_b = visit("2024-03-01", physician_global=5, patient_global=4, mmt8=50, chaq=2,
                    ck={"value": 900}, extramuscular_global=3)
    worse, _ = response.total_improvement_score(worse_a, worse_b, KB, juvenile=True)
    assert worse is not None and worse.total == 0 and worse.category == "none"


def course_child(months: int, *, with_mmf: bool = True, mrc_after: float = 3,
                 ck_after: float = 5000):  # type: ignore[no-untyped-def]
    treatments = [{"drug": "prednisolone", "start": "2024-01-01"}]
    if with_mmf:
        treatments.append({"drug": "mycophenolate_mofetil", "start": "2024-01-01"})
    end_month = 1 + months
    end = f"{2024 + (end_month - 1) // 12}-{(end_month - 1) % 12 + 1:02d}-01"
    return (a_child(age_years=12, as_of=end).with_ck(9000, upper_limit=190)
            .with_proximal_weakness(3).with_antibody("HMGCR", "positive")
            .with_(treatments=treatments, visits=[
                {"date": "2024-01-01", "ck": {"value": 9000, "upper_limit": 190},
                 "mrc_proximal": 3},
                {"date": end, "ck": {"value": ck_after, "upper_limit": 190},
                 "mrc_proximal": mrc_after}]).build())


def read(patient):  # type: ignore[no-untyped-def]
    return response.evaluate(patient, KB, assess(patient).classification.enmc_2017.cls)


def test_refractory_after_an_adequate_trial_suggests_ivig_for_anti_hmgcr() -> None:
    result = read(course_child(7))
    assert result.refractory is True and str(result.refractory_since) == "2024-08-01"
    finding = next(f for f in result.findings if f.rule_id == "response.refractory")
    assert "consider IVIg (not yet given)" in finding.conclusion


def test_not_yet_refractory_before_six_months() -> None:
    result = read(course_child(4))
    assert result.refractory is False
    finding = next(f for f in result.findings if f.rule_id == "response.refractory")
    assert "not yet an adequate trial" in finding.conclusion


def test_improving_course_is_not_refractory() -> None:
    assert read(course_child(8, mrc_after=4)).refractory is False
    assert read(course_child(8, ck_after=150)).refractory is False


def test_corticosteroid_alone_failing_is_flagged_not_called_refractory() -> None:
    result = read(course_child(8, with_mmf=False))
    assert result.refractory is False
    assert "response.corticosteroid_alone" in [f.rule_id for f in result.findings]


def test_refractory_threshold_is_a_parameter() -> None:
    patient = course_child(7)
    result = response.evaluate(patient, KB, "anti_hmgcr_imnm",
                               {"refractory_min_months": 9})
    assert result.refractory is False


def test_cumulative_cyclophosphamide_against_the_male_limit() -> None:
    base = a_child(sex="male").with_(weight="40 kg", height="150 cm")
    under = base.with_(treatments=[
        {"drug": "cyclophosphamide", "dose": "500 mg/m2", "administrations": 3},
        {"drug": "cyclophosphamide", "dose": "750 mg/m2", "administrations": 7}]).build()
    result = treatment.cumulative_cyclophosphamide(under, KB)
    assert result is not None
    assert result.total_g_per_m2 == pytest.approx(6.75)  # 3 x 0.5 + 7 x 0.75
    assert result.limit_g_per_m2 == 7.5 and not result.over_limit
    over = base.with_(treatments=[
        {"drug": "cyclophosphamide", "dose": "500 mg/m2", "administrations": 3},
        {"drug": "cyclophosphamide", "dose": "750 mg/m2", "administrations": 7},
        {"drug": "cyclophosphamide", "dose": {"value": 1000, "unit": "mg"},
         "administrations": 1},
        {"drug": "cyclophosphamide", "dose": "600 mg"}]).build()
    result = treatment.cumulative_cyclophosphamide(over, KB)
    assert result is not None
    # BSA sqrt(150 x 40 / 3600) = 1.29099; 1000 mg / 1.29099 = 774.6 mg/m2 -> 7.52 g/m2
    assert result.total_g_per_m2 == pytest.approx(7.525, abs=1e-3)
    assert result.over_limit and result.doses_without_amount == 1
    girl = a_child(sex="female").with_(treatments=[
        {"drug": "cyclophosphamide", "dose": "750 mg/m2", "administrations": 12}]).build()
    result = treatment.cumulative_cyclophosphamide(girl, KB)
    assert result is not None and result.limit_g_per_m2 is None and not result.over_limit


def test_plan_for_anti_srp_puts_rituximab_early_and_monitors_it() -> None:
    child = (a_child(age_years=12).with_(weight="40 kg", height="150 cm")
             .with_ck(9000, upper_limit=190).with_proximal_weakness(3)
             .with_antibody("SRP", "positive").build())
    plan = treatment.build_plan(child, KB, "anti_srp_imnm")
    early = [s for s in plan.steps if s.line == "early"]
    assert [s.id for s in early] == ["early.rituximab_anti_srp"]
    # 750 x 1.29099 = 968.2 -> 960 mg (rounded down to 10 mg)
    assert early[0].doses[0].high == 960
    assert any(f.rule_id == "treatment.monitoring.rituximab" for f in plan.monitoring)
    assert next(r.rule_id for r in plan.reassess) == "review.wean_corticosteroid"


def test_plan_without_weight_or_class_says_what_is_missing() -> None:
    child = a_child().build()
    plan = treatment.build_plan(child, KB, "insufficient_data")
    assert plan.steps == () and plan.findings[0].rule_id == "treatment.no_imnm_class"
    plan = treatment.build_plan(child, KB, "anti_hmgcr_imnm")
    assert plan.missing[0].startswith("weight")
    assert all(not s.doses for s in plan.steps)


def test_plan_flags_corticosteroid_alone() -> None:
    child = a_child().with_(treatments=[{"drug": "prednisolone", "start": "2024-10-01"}]).build()
    plan = treatment.build_plan(child, KB, "anti_hmgcr_imnm")
    assert plan.findings[0].rule_id == "treatment.corticosteroid_alone"


def imnm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imnm.cli", *args], capture_output=True,
                          text=True, check=False, cwd=cwd)


def test_course_example_matches_golden_and_plot_is_written(tmp_path: Path,
                                                          update_golden: bool) -> None:
    plot = tmp_path / "course.svg"
    run = imnm("course", str(COURSE_EXAMPLE), "--format", "json", "--plot", str(plot))
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["refractory_since"] == "2023-09-01"
    assert plot.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    doc["plot"] = None
    golden = GOLDEN / "course-case-series-2025-patient-1.json"
    if update_golden:
        golden.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    assert doc == json.loads(golden.read_text(encoding="utf-8"))


def test_course_writes_no_file_unless_asked(tmp_path: Path) -> None:
    # Issue 13: `course` wrote <id>-course.png into the current folder without --plot.
    run = imnm("course", str(COURSE_EXAMPLE), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []
    assert "REFRACTORY" in run.stdout and "consider IVIg (not yet given)" in run.stdout
    # A child without visits has no course to draw: said, never an empty chart.
    no_visits = tmp_path / "no-visits.json"
    no_visits.write_text(json.dumps({"id": "no-visits", "age_years": 9}), encoding="utf-8")
    drawn = imnm("course", str(no_visits), "--plot", str(tmp_path / "c.png"), cwd=tmp_path)
    assert drawn.returncode == 2 and "has no visits" in drawn.stderr
    assert not (tmp_path / "c.png").exists()


def test_commands_without_markdown_refuse_it() -> None:
    # Issue 13: `dose --format markdown` printed text.
    for args in (["dose", "methotrexate", "--weight", "25"], ["plan", str(COURSE_EXAMPLE)],
                 ["course", str(COURSE_EXAMPLE)]):
        run = imnm(*args, "--format", "markdown")
        assert run.returncode == 2 and "markdown" in run.stderr, args


def test_plan_command() -> None:
    run = imnm("plan", str(COURSE_EXAMPLE), "--format", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["enmc_class"] == "anti_hmgcr_imnm" and doc["bsa_m2"] == pytest.approx(1.392)
    ids = [s["id"] for s in doc["steps"]]
    assert ids.index("early.ivig_anti_hmgcr") < ids.index("second.severe_or_refractory")
    text = imnm("plan", str(COURSE_EXAMPLE)).stdout
    assert "prednisolone: 45-60 mg per day" in text and "CAPPED" in text


def test_dose_command() -> None:
    run = imnm("dose", "methotrexate", "--weight", "25", "--height", "125", "--format", "json")
    assert run.returncode == 0, run.stderr
    doses = json.loads(run.stdout)["doses"]
    assert [(d["low"], d["high"]) for d in doses] == [(7.5, 7.5), (13.5, 18.5)]
    text = imnm("dose", "MTX", "--weight", "25").stdout
    assert "7.5 mg per week" in text and "give --height" in text
    bad = imnm("dose", "rituximab", "--weight", "25")
    assert bad.returncode == 2 and "height: needed" in bad.stderr
    unknown = imnm("dose", "unicorn", "--weight", "25")
    assert unknown.returncode == 2 and "drug: got 'unicorn'" in unknown.stderr


def test_example_course_file_is_a_valid_patient() -> None:
    patient = load_patient(COURSE_EXAMPLE.read_text(encoding="utf-8"))
    assert len(patient.visits) == 5


def test_cyclophosphamide_course_is_projected_against_the_limit() -> None:
    # Issue 11 item 3: a boy at 6.75 g/m² is offered a course of 6-6.75 g/m² more.
    def boy(*given: dict[str, object]):  # type: ignore[no-untyped-def]
        return (a_child(age_years=14, sex="male").with_(weight="50 kg", height="160 cm")
                .with_(treatments=list(given)).build())

    at_675 = boy({"drug": "cyclophosphamide", "dose": "750 mg/m2", "administrations": 9})
    plan = treatment.build_plan(at_675, KB, "anti_srp_imnm")
    projected = next(f for f in plan.findings
                     if f.rule_id == "treatment.projected_cyclophosphamide")
    assert projected.kind.value == "red_flag"
    assert "12.75-13.5 g/m²" in projected.conclusion and "PAST the 7.5" in projected.conclusion
    assert "No per-pulse cap exists in the sources" in projected.conclusion
    # Past the limit already: no new pulse is computed, and the plan says why.
    at_8 = boy({"drug": "cyclophosphamide", "dose": "1000 mg/m2", "administrations": 8})
    plan = treatment.build_plan(at_8, KB, "anti_srp_imnm")
    cyclo = [t for s in plan.steps for t in s.doses_not_computed if "cyclophosphamide" in t]
    assert cyclo and all("already past its limit" in t for t in cyclo)
    assert not [d for s in plan.steps for d in s.doses if d.drug == "cyclophosphamide"]
    # Never given: the course alone (6-6.75 g/m²) is within the limit, said as a note.
    fresh = treatment.build_plan(boy(), KB, "anti_srp_imnm")
    note = next(f for f in fresh.findings if f.rule_id == "treatment.projected_cyclophosphamide")
    assert note.kind.value == "note" and "6-6.75 g/m²" in note.conclusion


def test_two_methotrexate_doses_are_one_recommended_and_one_alternative() -> None:
    # Issue 11 item 6: at 70 kg the plan printed 15 mg/week and 27-36 mg/week side by side.
    child = (a_child(age_years=16).with_(weight="70 kg", height="175 cm")
             .with_antibody("HMGCR", "positive").build())
    plan = treatment.build_plan(child, KB, "anti_hmgcr_imnm")
    step = next(s for s in plan.steps if s.id == "first.methotrexate")
    assert [d.choice for d in step.doses] == ["recommended", "alternative"]
    assert all(d.choice_reason and d.source for d in step.doses)
    text = render_plan(plan)
    assert "RECOMMENDED for this child: methotrexate: 15 mg per week" in text
    assert "ALTERNATIVE: methotrexate" in text and "why alternative:" in text


def test_a_child_who_is_not_imnm_is_told_where_their_care_is_described() -> None:
    # Issue 11 item 10: for a genetically confirmed Duchenne or a classic JDM the plan said
    # "Establish the class first".
    jdm = load_patient((EXAMPLES / "jdm-classic.json").read_text(encoding="utf-8"))
    enmc = assess(jdm).classification.enmc_2017
    assert enmc.cls == "not_imnm"
    plan = treatment.build_plan(jdm, KB, enmc.cls, enmc.caveats)
    text = plan.findings[0].conclusion
    assert "Establish the class first" not in text and "SHARE" in text


def test_plan_header_rounds_converted_units_and_says_what_to_enter() -> None:
    # Issue 11 item 10: "28.122726940000003 kg" and "weight unknown kg".
    child = a_child(age_years=9).with_(weight="62 lb", height="130 cm").build()
    header = render_plan(treatment.build_plan(child, KB, "anti_hmgcr_imnm")).splitlines()[1]
    assert "weight 28.1 kg" in header and "28.12272" not in header
    bare = render_plan(treatment.build_plan(a_child().build(), KB, "anti_hmgcr_imnm"))
    assert "weight not recorded (enter it to compute doses)" in bare
    assert "unknown kg" not in bare


def test_tis_is_only_as_sure_as_its_percent_change_formula() -> None:
    # Issue 11 item 11: the measures' bands are confirmed, the percent-change formula is not.
    child = a_child(age_years=10).with_(visits=[
        {"date": "2024-01-01", "physician_global": 6, "patient_global": 5, "mmt8": 50,
         "chaq": 1.5, "ck": {"value": 4000}, "extramuscular_global": 3},
        {"date": "2024-07-01", "physician_global": 2, "patient_global": 4, "mmt8": 62,
         "chaq": 1.2, "ck": {"value": 1000}, "extramuscular_global": 2}]).build()
    course = response.evaluate(child, KB, "anti_hmgcr_imnm")
    tis = next(f for f in course.findings if f.rule_id == "response.total_improvement_score")
    assert tis.status.value == "unconfirmed"
    assert all(m.change_status.value == "unconfirmed" for m in KB.measures.values())
