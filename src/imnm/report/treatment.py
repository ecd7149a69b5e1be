"""Plain-text renderings of a treatment plan, a dose and a course."""

from __future__ import annotations

from imnm.dosing import ComputedDose
from imnm.findings import Finding
from imnm.knowledge import Knowledge, load_knowledge
from imnm.report.text import cite as _cite
from imnm.rules.response import CourseResult
from imnm.rules.treatment import TreatmentPlan


def dose_drug(kb: Knowledge, not_computed: str) -> str:
    """The drug's label of a 'dose_id: reason' line of doses not computed."""
    dose_id = not_computed.split(":", 1)[0]
    rule = kb.doses.get(dose_id)
    return kb.label("drug", rule.drug.value) if rule is not None else dose_id


def dose_lines(d: ComputedDose) -> list[str]:
    """A computed dose, several lines."""
    amount = f"{d.low:g}" if d.low == d.high else f"{d.low:g}-{d.high:g}"
    role = {"recommended": "RECOMMENDED for this child: ",
            "alternative": "ALTERNATIVE: "}.get(d.choice or "", "")
    kb = load_knowledge()
    lines = [f"{role}{kb.label('drug', d.drug)}: {amount} {d.unit} per {d.per}"
             + (f", {kb.label('route', d.route)}" if d.route else "")
             + (f", {d.frequency}" if d.frequency else "")
             + (f", for {d.duration}" if d.duration else "") + f"  {_cite(d.source, d.status)}",
             f"    how: {d.calculation}" + (" -> CAPPED" if d.capped else ""),
             f"    cap: {d.cap_note}"
             + (f" {_cite(d.cap_source, d.cap_status.value)}"
                if d.cap_source and d.cap_status else ""),
             f"    rounding: {d.rounding}"]
    if d.bsa_m2 is not None:
        lines.append(f"    BSA {d.bsa_m2:.2f} m² ({d.bsa_formula})")
    if d.choice_reason:
        lines.append(f"    why {d.choice}: {d.choice_reason}")
    if d.note:
        lines.append(f"    note: {d.note}")
    return lines


def _finding(f: Finding) -> str:
    return f"{f.conclusion} {_cite(f.source, f.status.value)}"


def render_plan(plan: TreatmentPlan) -> str:
    """The plan as text."""
    kb = load_knowledge()
    out = [f"Treatment plan for {plan.patient_id} (ENMC 2017: "
           f"{kb.label('enmc_class', plan.enmc_class)})",
           "; ".join((
               f"weight {plan.weight_kg:.1f} kg" if plan.weight_kg is not None
               else "weight not recorded (enter it to compute doses)",
               f"height {plan.height_cm:.1f} cm" if plan.height_cm is not None
               else "height not recorded (needed for per-m² doses)",
               f"BSA {plan.bsa_m2:.2f} m² ({plan.bsa_formula})" if plan.bsa_m2 is not None
               else "BSA not computed")),
           f"rounding: {plan.rounding_rule}", ""]
    if plan.missing:
        out += ["missing: " + "; ".join(plan.missing), ""]
    for f in plan.findings:
        out += [f"{f.kind.value.upper()}: {_finding(f)}", ""]
    for step in plan.steps:
        out.append(f"[{kb.label('plan_line', step.line)}] {step.says} "
                   f"{_cite(step.source, step.status.value)}")
        for d in step.doses:
            out += ["  " + line for line in dose_lines(d)]
        for text in step.doses_not_computed:
            reason = text.split(":", 1)[-1].strip()
            out.append(f"  {dose_drug(kb, text)}: not computed ({reason}"
                       + ("; enter the weight in kg" if "weight" in reason else "") + ")")
        if step.other_options:
            out.append("  other options (no dose computed): "
                       + ", ".join(kb.label("drug", d) for d in step.other_options))
        out.append("")
    if plan.monitoring:
        out.append("Monitoring")
        out += [f"  - {_finding(f)}" for f in plan.monitoring] + [""]
    if plan.reassess:
        out.append("When to reassess")
        out += [f"  - {_finding(f)}" for f in plan.reassess] + [""]
    return "\n".join(out)


def render_course(course: CourseResult) -> str:
    """The course as text: a timeline and the findings."""
    out = [f"Course of {course.patient_id}", "", "date        CK (U/L)   MMT-8  CMAS  MRC  mRS  "
           "CHAQ  status"]
    status = {s.date: s for s in course.timeline}
    for v in course.visits:
        ck = f"{v.ck.u_per_l:,.0f}" if v.ck and v.ck.u_per_l is not None else (
            v.ck.interpretation.value if v.ck and v.ck.interpretation else "-")
        s = status.get(v.date)
        flag = "baseline" if s is None else (
            "REFRACTORY" if s.refractory else "inadequate" if s.inadequate_response
            else "responding" if s.inadequate_response is False else "unknown")

        def cell(value: float | int | None, width: int) -> str:
            return (f"{value:g}" if value is not None else "-").rjust(width)

        out.append(f"{v.date}  {ck:>9}  {cell(v.mmt8, 5)}  {cell(v.cmas, 4)}  "
                   f"{cell(v.mrc_proximal, 3)}  {cell(v.mrs, 3)}  {cell(v.chaq, 4)}  {flag}")
    out.append("")
    for f in course.findings:
        out.append(f"{f.kind.value.upper()}: {_finding(f)}")
        if f.missing:
            out.append("  missing: " + "; ".join(f.missing))
    return "\n".join(out) + "\n"
