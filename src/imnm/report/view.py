"""What the clinic's page, the PDF and the CDS card's link show about one child, built once.

The three surfaces render the same view (:func:`child_view`) with the same templates' parts,
so a clinician reads the same classification, plan and course verdict on each, in words: the
knowledge's human labels, never internal ids. The plan is a table (drug, dose for this child,
cap, route, frequency, source); the course is its verdict, the escalation it suggests, the
visit table and the findings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imnm.assessment import Assessment
from imnm.findings import Finding, Kind
from imnm.knowledge import Knowledge, load_knowledge
from imnm.patient import Patient
from imnm.report.text import outline
from imnm.report.treatment import dose_drug
from imnm.rules.response import CourseResult, evaluate
from imnm.rules.treatment import TreatmentPlan, build_plan

_KIND_WORD = {Kind.action: "Do", Kind.red_flag: "Red flag", Kind.caution: "Caution",
              Kind.note: "Note", Kind.gap: "Missing", Kind.conclusion: ""}


@dataclass(frozen=True)
class SourceRef:
    """A source as a reader needs it: its short id, citation and a DOI link."""

    id: str
    citation: str
    url: str | None
    status: str

    @property
    def unsure(self) -> bool:
        """Whether the reader should be told the fact's status."""
        return self.status in ("unconfirmed", "secondary", "heuristic", "derived")


@dataclass(frozen=True)
class PlanRow:
    """One line of the plan table."""

    line: str
    step: str
    drug: str
    dose: str
    cap: str
    route: str
    frequency: str
    source: SourceRef
    how: str = ""
    choice: str = ""
    note: str = ""


@dataclass(frozen=True)
class VisitRow:
    """One visit of the course table."""

    date: str
    ck: str
    mmt8: str
    cmas: str
    mrc: str
    mrs: str
    chaq: str
    status: str


@dataclass(frozen=True)
class Said:
    """A finding as a sentence with its source."""

    kind: str
    text: str
    source: SourceRef
    missing: tuple[str, ...] = ()


@dataclass
class ChildView:
    """Everything the page, the PDF and the card's link show."""

    patient_id: str
    as_of: str
    enmc: str
    test_flag: bool
    review_label: bool
    sections: list[tuple[str, list[str]]]
    plan_header: list[str]
    plan_missing: list[str]
    plan_rows: list[PlanRow]
    plan_steps_without_dose: list[tuple[str, str, SourceRef]]
    plan_findings: list[Said]
    monitoring: list[Said]
    course_verdict: str | None
    course_escalation: str | None
    course_visits: list[VisitRow]
    course_findings: list[Said]
    sources: list[SourceRef] = field(default_factory=list)


def _source(kb: Knowledge, source_id: str, status: str) -> SourceRef:
    known = kb.sources.get(source_id)
    if known is None:
        return SourceRef(source_id, source_id, None, status)
    return SourceRef(source_id, known.citation, known.link, status)


def _said(kb: Knowledge, f: Finding) -> Said:
    return Said(_KIND_WORD[f.kind], f.conclusion, _source(kb, f.source, f.status.value),
                tuple(f.missing))


def _plan(kb: Knowledge, plan: TreatmentPlan) -> tuple[list[PlanRow],
                                                        list[tuple[str, str, SourceRef]]]:
    rows: list[PlanRow] = []
    bare: list[tuple[str, str, SourceRef]] = []
    for step in plan.steps:
        line = kb.label("plan_line", step.line)
        for d in step.doses:
            amount = f"{d.low:g}" if d.low == d.high else f"{d.low:g}-{d.high:g}"
            rows.append(PlanRow(
                line=line, step=step.says, drug=kb.label("drug", d.drug),
                dose=f"{amount} {d.unit} per {d.per}" + (" (capped)" if d.capped else ""),
                cap=d.cap_note, route=kb.label("route", d.route) if d.route else "",
                frequency=d.frequency + (f", for {d.duration}" if d.duration else ""),
                source=_source(kb, d.source, d.status.value), how=d.calculation,
                choice={"recommended": "recommended for this child",
                        "alternative": "alternative"}.get(d.choice or "", ""),
                note=d.note or ""))
        for text in step.doses_not_computed:
            rows.append(PlanRow(
                line=line, step=step.says, drug=dose_drug(kb, text),
                dose=_what_to_enter(text), cap="", route="", frequency="",
                source=_source(kb, step.source, step.status.value)))
        if not step.doses and not step.doses_not_computed:
            bare.append((line, step.says, _source(kb, step.source, step.status.value)))
    return rows, bare


def _what_to_enter(reason: str) -> str:
    """A dose that could not be computed says what to enter, not 'unknown kg'."""
    lowered = reason.lower()
    if "weight" in lowered:
        return "enter the child's weight (kg) to compute this dose"
    if "height" in lowered:
        return "enter the child's height (cm) to compute this dose (per m²)"
    return "not computed: " + reason.split(":", 1)[-1].strip()


def _course(kb: Knowledge, course: CourseResult) -> tuple[str | None, str | None,
                                                           list[VisitRow]]:
    status = {s.date: s for s in course.timeline}
    rows = []
    for v in course.visits:
        ck = (f"{v.ck.u_per_l:,.0f} U/L" if v.ck and v.ck.u_per_l is not None
              else v.ck.interpretation.value if v.ck and v.ck.interpretation else "")
        s = status.get(v.date)
        word = ("baseline" if s is None else "refractory" if s.refractory
                else "inadequate response" if s.inadequate_response
                else "responding" if s.inadequate_response is False else "not assessable")

        def cell(value: float | None) -> str:
            return "" if value is None else f"{value:g}"

        rows.append(VisitRow(str(v.date), ck, cell(v.mmt8), cell(v.cmas), cell(v.mrc_proximal),
                             cell(v.mrs), cell(v.chaq), word))
    if not course.visits:
        return None, None, rows
    escalation = None
    for f in course.findings:
        if f.rule_id == "response.refractory" and "Escalation then:" in f.conclusion:
            escalation = f.conclusion.split("Escalation then:", 1)[1].strip().rstrip(".")
    if course.refractory_since is not None:
        latest = course.timeline[-1] if course.timeline else None
        now = (" and still refractory at the latest visit" if latest and latest.refractory
               else "; no longer inadequate at the latest visit" if latest and
               latest.inadequate_response is False else "")
        verdict = f"Refractory since {course.refractory_since}{now}."
    elif course.refractory is False:
        verdict = "Not refractory: responding to the current treatment."
    else:
        verdict = ("Refractory or not cannot be judged yet: it needs treatments with dates and "
                   "at least two visits with CK and strength.")
    return verdict, escalation, rows


def child_view(patient: Patient, result: Assessment,
               knowledge: Knowledge | None = None) -> ChildView:
    """The view of one child for the page, the PDF and the card's link."""
    kb = knowledge or load_knowledge()
    enmc = result.classification.enmc_2017
    plan = build_plan(patient, kb, enmc.cls, enmc.caveats)
    course = evaluate(patient, kb, enmc.cls)
    rows, bare = _plan(kb, plan)
    verdict, escalation, visits = _course(kb, course)
    header = [f"ENMC 2017: {kb.label('enmc_class', plan.enmc_class)}",
              f"weight {plan.weight_kg:.1f} kg" if plan.weight_kg is not None
              else "weight not recorded: enter it to compute the doses",
              f"height {plan.height_cm:.1f} cm" if plan.height_cm is not None
              else "height not recorded: enter it for per-m² doses",
              f"body surface area {plan.bsa_m2:.2f} m² ({plan.bsa_formula})"
              if plan.bsa_m2 is not None else "", f"rounding: {plan.rounding_rule}"]
    plan_findings = [_said(kb, f) for f in plan.findings]
    monitoring = [_said(kb, f) for f in (*plan.monitoring, *plan.reassess)]
    course_findings = [_said(kb, f) for f in course.findings]
    used = list(dict.fromkeys([
        *result.sources, *(r.source.id for r in rows), *(s.id for _l, _s, s in bare),
        *(f.source.id for f in (*plan_findings, *monitoring, *course_findings))]))
    return ChildView(
        patient_id=result.patient_id, as_of=str(result.as_of),
        enmc=kb.label("enmc_class", enmc.cls),
        test_flag=result.suspicion.test_for_imnm_antibodies,
        review_label=result.suspicion.review_dystrophy_label,
        sections=[(t, lines) for t, lines in outline(result) if t != "Sources"],
        plan_header=[h for h in header if h], plan_missing=list(plan.missing),
        plan_rows=rows, plan_steps_without_dose=bare,
        plan_findings=plan_findings, monitoring=monitoring,
        course_verdict=verdict, course_escalation=escalation, course_visits=visits,
        course_findings=course_findings,
        sources=[_source(kb, k, "confirmed") for k in used if k in kb.sources])
