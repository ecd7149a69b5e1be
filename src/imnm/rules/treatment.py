"""Treatment plan: the regimen for the child's ENMC subtype, with doses for their size, the
monitoring each drug needs, when to reassess, and the cumulative cyclophosphamide dose.

Rule ids: ``treatment.plan`` (the steps), ``treatment.no_imnm_class`` (no plan without a
class), ``treatment.corticosteroid_alone`` (steroids alone usually fail),
``treatment.cumulative_cyclophosphamide`` and ``treatment.monitoring.<drug>``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from imnm import dosing
from imnm.dosing import ComputedDose, CumulativeDose, DosingError
from imnm.findings import Finding, Kind, facts
from imnm.knowledge import Knowledge, Status
from imnm.patient import Drug, Patient, Sex
from imnm.vocabulary import CORTICOSTEROIDS

NOT_IMMUNOSUPPRESSANT = CORTICOSTEROIDS | {Drug.other}
LINE_ORDER = ("first", "early", "wean", "second", "refractory")


class PlanStep(BaseModel):
    """One step of the plan with its computed doses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    line: str
    says: str
    doses: tuple[ComputedDose, ...]
    doses_not_computed: tuple[str, ...]
    other_options: tuple[str, ...]
    source: str
    status: Status


class TreatmentPlan(BaseModel):
    """The plan for one child."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_id: str
    enmc_class: str
    weight_kg: float | None
    height_cm: float | None
    bsa_m2: float | None
    bsa_formula: str
    rounding_rule: str
    steps: tuple[PlanStep, ...]
    monitoring: tuple[Finding, ...]
    reassess: tuple[Finding, ...]
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]


def is_corticosteroid(drug: Drug) -> bool:
    """True for any corticosteroid."""
    return drug in CORTICOSTEROIDS


def cumulative_cyclophosphamide(patient: Patient, knowledge: Knowledge) -> CumulativeDose | None:
    """The cyclophosphamide given so far, in g/m², against the cited limit for the child's sex.

    Doses in mg/m² count as given; absolute doses (mg or g) are divided by the child's current
    body surface area, which the result says. Entries without a dose or a number of
    administrations are counted as missing, never guessed.
    """
    given = [t for t in patient.treatments if t.drug is Drug.cyclophosphamide]
    if not given:
        return None
    bsa = None
    if patient.weight is not None and patient.height is not None:
        bsa = dosing.bsa_mosteller(patient.weight.kg, patient.height.cm)
    total_mg_m2, counted, missing = 0.0, 0, 0
    for entry in given:
        if entry.dose is None or entry.administrations is None:
            missing += 1
            continue
        unit = entry.dose.unit.replace(" ", "").replace("²", "2").lower()
        if unit in ("mg/m2", "g/m2"):
            per_m2 = entry.dose.value * (1000 if unit.startswith("g") else 1)
        elif unit in ("mg", "g") and bsa is not None:
            per_m2 = entry.dose.value * (1000 if unit == "g" else 1) / bsa
        else:
            missing += 1
            continue
        total_mg_m2 += per_m2 * entry.administrations
        counted += 1
    rule = next((c for c in knowledge.cumulative if c.drug is Drug.cyclophosphamide
                 and c.applies_to_sex == patient.sex.value), None)
    any_rule = next((c for c in knowledge.cumulative if c.drug is Drug.cyclophosphamide), None)
    total = round(total_mg_m2 / 1000, 3)
    if rule is not None:
        says, limit = rule.says, rule.limit
    elif any_rule is not None:
        limit = None
        says = (any_rule.note or "") if patient.sex is Sex.female else (
            f"Sex not recorded: the {any_rule.applies_to_sex} limit of {any_rule.limit:g} g/m² "
            "cannot be applied. " + any_rule.says)
    else:
        says, limit = "No cumulative limit in the knowledge base.", None
    cited = rule or any_rule
    source = cited.source if cited is not None else "wang_liang_2023"
    status = cited.status if cited is not None else Status.confirmed
    return CumulativeDose("cyclophosphamide", total, limit,
                          limit is not None and total > limit, counted, missing, says,
                          source, status)


def corticosteroid_alone_days(patient: Patient) -> int | None:
    """Days on corticosteroid with no other immunosuppressant or IVIg started, up to the
    reference date (None when the child had no corticosteroid, or had another agent).
    A treatment without an end date is counted as a single day at its start."""
    today = patient.reference_date()
    started = [t for t in patient.treatments if t.start is not None and t.start <= today]
    steroids = [t for t in started if is_corticosteroid(t.drug)]
    others = [t for t in started if not is_corticosteroid(t.drug) and t.drug is not Drug.other]
    if not steroids or others:
        return None
    first = min(t.start for t in steroids if t.start is not None)
    last = max((t.end or t.start) for t in steroids if t.start is not None)
    return (min(last, today) - first).days


def _active(patient: Patient) -> list[Drug]:
    today = patient.reference_date()
    return [t.drug for t in patient.treatments
            if (t.start is None or t.start <= today) and (t.end is None or t.end >= today)]


def _projected_cyclophosphamide(patient: Patient, knowledge: Knowledge, applicable: list[Any],
                                 cumulative: CumulativeDose | None) -> Finding | None:
    """The cumulative cyclophosphamide after the course the plan offers, against the limit:
    a red flag when the course would pass it."""
    rules = [knowledge.doses[d] for step in applicable for d in step.doses
             if knowledge.doses[d].drug is Drug.cyclophosphamide]
    if not rules or any(r.basis != "per_m2" or r.administrations_min is None
                        or r.administrations_max is None for r in rules):
        return None
    scale = {"mg": 1 / 1000, "g": 1.0}
    low = sum(r.amount_min * scale[r.amount_unit] * (r.administrations_min or 0) for r in rules)
    high = sum(r.amount_max * scale[r.amount_unit] * (r.administrations_max or 0) for r in rules)
    so_far = cumulative.total_g_per_m2 if cumulative is not None else 0.0
    limit = cumulative.limit_g_per_m2 if cumulative is not None else next(
        (c.limit for c in knowledge.cumulative if c.drug is Drug.cyclophosphamide
         and c.applies_to_sex == patient.sex.value), None)
    if cumulative is None and limit is None:
        return None  # never given and no limit for this child's sex: nothing to project
    unknown = cumulative is not None and cumulative.doses_without_amount > 0
    total_low, total_high = round(so_far + low, 3), round(so_far + high, 3)
    text = (f"The cyclophosphamide course offered ({'; '.join(r.says for r in rules)}) "
            f"adds {low:g}-{high:g} g/m²: the cumulative dose would be {total_low:g}-"
            f"{total_high:g} g/m²" + (" or more (some past doses are not counted)"
                                      if unknown else ""))
    passes = limit is not None and total_high > limit
    if limit is not None:
        text += (f", {'PAST' if passes else 'within'} the {limit:g} g/m² limit")
    text += ". No per-pulse cap exists in the sources: each pulse follows body surface area."
    rule = next((c for c in knowledge.cumulative if c.drug is Drug.cyclophosphamide), None)
    return Finding(
        rule_id="treatment.projected_cyclophosphamide",
        kind=Kind.red_flag if passes else Kind.note, conclusion=text,
        facts=facts(so_far_g_per_m2=so_far, course_g_per_m2=f"{low:g}-{high:g}",
                    limit_g_per_m2=limit),
        source=rule.source if rule is not None else rules[0].source,
        status=Status.derived)


def build_plan(patient: Patient, knowledge: Knowledge, enmc_class: str,
               caveats: tuple[str, ...] = ()) -> TreatmentPlan:
    """The treatment plan for ``patient`` whose ENMC 2017 class is ``enmc_class``. The class's
    caveats (``EnmcResult.caveats``: an unconfirmed anti-SRP, genetic exclusion not done) come
    first, as a red flag before any dose: the class is provisional until they are settled."""
    weight = patient.weight.kg if patient.weight else None
    height = patient.height.cm if patient.height else None
    bsa = dosing.bsa_mosteller(weight, height) if weight and height else None
    findings: list[Finding] = []
    if caveats and any(enmc_class in s.applies_to for s in knowledge.steps):
        findings.append(Finding(
            rule_id="treatment.confirm_first", kind=Kind.red_flag,
            conclusion=f"Provisional class ({knowledge.label('enmc_class', enmc_class)}): "
            "confirm before treating: "
            + "; ".join(caveats) + ". The doses below assume the class stands.",
            facts=facts(enmc_class=enmc_class, caveats="; ".join(caveats)),
            source="enmc_224_2018", status=Status.unconfirmed,
            missing=caveats))
    missing: list[str] = []
    if weight is None:
        missing.append("weight (no dose can be computed)")
    if height is None:
        missing.append("height (per-m² doses: methotrexate per m², rituximab, cyclophosphamide)")

    cumulative = cumulative_cyclophosphamide(patient, knowledge)
    past_limit = cumulative is not None and cumulative.over_limit
    steps: list[PlanStep] = []
    applicable = [s for s in knowledge.steps if enmc_class in s.applies_to]
    if not applicable and enmc_class == "not_imnm":
        findings.append(Finding(
            rule_id="treatment.no_imnm_class", kind=Kind.note,
            conclusion="No IMNM treatment plan: the ENMC 2017 IMNM definitions are not met "
            "(see the assessment's reasons). Care follows the child's own diagnosis: for "
            "juvenile dermatomyositis, the SHARE recommendations; for a genetically confirmed "
            "dystrophy, its own standards of care. `imnm dose` still computes single doses.",
            facts=facts(enmc_class=enmc_class), source="share_2017",
            status=Status.confirmed))
    elif not applicable:
        findings.append(Finding(
            rule_id="treatment.no_imnm_class", kind=Kind.gap,
            conclusion="No IMNM treatment plan: the ENMC 2017 class is "
            f"{knowledge.label('enmc_class', enmc_class)}. "
            "Establish the class first (see the assessment's missing elements); "
            "`imnm dose` still computes single doses.",
            facts=facts(enmc_class=enmc_class), source="enmc_224_2018",
            status=Status.unconfirmed, missing=("an ENMC 2017 IMNM class",)))
    for step in sorted(applicable, key=lambda s: LINE_ORDER.index(s.line)):
        computed: list[ComputedDose] = []
        not_computed: list[str] = []
        for dose_id in step.doses:
            rule = knowledge.doses[dose_id]
            if weight is None:
                not_computed.append(f"{dose_id}: weight missing")
                continue
            if past_limit and rule.drug is Drug.cyclophosphamide:
                not_computed.append(f"{dose_id}: the cumulative cyclophosphamide dose is "
                                    "already past its limit (see the red flag)")
                continue
            try:
                computed.append(dosing.compute(rule, weight, height))
            except DosingError as exc:
                not_computed.append(f"{dose_id}: {exc}")
        steps.append(PlanStep(
            id=step.id, line=step.line, says=step.says, doses=tuple(computed),
            doses_not_computed=tuple(not_computed),
            other_options=tuple(d.value for d in step.drugs),
            source=step.source, status=step.status))

    planned = {knowledge.doses[d].drug for s in applicable for d in s.doses}
    planned |= {t.drug for t in patient.treatments}
    monitoring = tuple(
        Finding(rule_id=f"treatment.monitoring.{m.drug.value}", kind=Kind.action,
                conclusion=m.says, facts=facts(drug=m.drug.value), source=m.source,
                status=m.status)
        for m in knowledge.monitoring if m.drug in planned
        and (m.when == "always" or m.when == enmc_class))
    reassess = tuple(
        Finding(rule_id=r.id, kind=Kind.action, conclusion=f"At about {r.weeks:g} weeks: {r.says}",
                facts=facts(weeks=r.weeks), source=r.source, status=r.status)
        for r in knowledge.reviews) if applicable else ()

    active = _active(patient)
    if active and all(is_corticosteroid(d) for d in active) and applicable:
        findings.append(Finding(
            rule_id="treatment.corticosteroid_alone", kind=Kind.red_flag,
            conclusion="On corticosteroid alone: pediatric IMNM is often refractory to "
            "corticosteroids alone and most children need an immunosuppressant or IVIg as well.",
            facts=facts(current_treatment=[d.value for d in active]),
            source="wang_liang_2023", status=Status.confirmed))
    projection = _projected_cyclophosphamide(patient, knowledge, applicable, cumulative)
    if projection is not None:
        findings.append(projection)
    if cumulative is not None:
        text = f"Cumulative cyclophosphamide so far: {cumulative.total_g_per_m2:g} g/m²"
        if cumulative.limit_g_per_m2 is not None:
            text += (f" (limit {cumulative.limit_g_per_m2:g} g/m²"
                     f"{': EXCEEDED' if cumulative.over_limit else ''})")
        text += f". {cumulative.says}"
        findings.append(Finding(
            rule_id="treatment.cumulative_cyclophosphamide",
            kind=Kind.red_flag if cumulative.over_limit else Kind.note, conclusion=text,
            facts=facts(entries_counted=cumulative.doses_counted,
                        entries_without_dose_or_count=cumulative.doses_without_amount or None),
            source=cumulative.source, status=cumulative.status,
            missing=("dose and number of administrations of every cyclophosphamide entry",)
            if cumulative.doses_without_amount else ()))
    return TreatmentPlan(
        patient_id=patient.id, enmc_class=enmc_class, weight_kg=weight, height_cm=height,
        bsa_m2=None if bsa is None else round(bsa, 3), bsa_formula=dosing.BSA_FORMULA,
        rounding_rule=dosing.ROUNDING_RULE, steps=tuple(steps), monitoring=monitoring,
        reassess=reassess, findings=tuple(findings), missing=tuple(missing))
