"""Course: response to treatment over the visits, and refractory disease.

* ``response.total_improvement_score``: the 2016 ACR/EULAR Total Improvement Score between the
  baseline and the latest visit, when all six core set measures are recorded at both.
* ``response.trend``: otherwise (and always) the CK and strength trends, said plainly.
* ``response.refractory``: an inadequate response after an adequate trial (corticosteroid plus
  an immunosuppressant for ``refractory_min_months``), with the escalation it suggests.
* ``response.corticosteroid_alone``: an inadequate response on corticosteroid alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from imnm.findings import Finding, Kind, facts
from imnm.knowledge import Knowledge, Status
from imnm.patient import DAYS_PER_MONTH, Drug, Patient, Visit
from imnm.rules._facts import fallback_uln
from imnm.rules.treatment import is_corticosteroid


class MeasureChange(BaseModel):
    """One core set measure's change and its points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: str
    baseline: float
    follow_up: float
    percent_improvement: float
    points: float


class TisResult(BaseModel):
    """The Total Improvement Score between two visits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_date: dt.date
    follow_up_date: dt.date
    population: str
    total: float
    category: str
    measures: tuple[MeasureChange, ...]


class VisitStatus(BaseModel):
    """Where the course stood at one visit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date
    months_on_combination: float | None
    inadequate_response: bool | None
    basis: str
    refractory: bool | None


class CourseResult(BaseModel):
    """The course of one child."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient_id: str
    visits: tuple[Visit, ...]
    tis: TisResult | None
    tis_missing: tuple[str, ...]
    refractory: bool | None
    refractory_since: dt.date | None
    timeline: tuple[VisitStatus, ...]
    findings: tuple[Finding, ...]


def _band_points(percent: float, bands: tuple[float, ...], points: tuple[float, ...]) -> float:
    for edge, score in zip(bands, points, strict=False):
        if percent <= edge:
            return score
    return points[-1]


def _strength(visit: Visit, knowledge: Knowledge) -> tuple[str, float, float] | None:
    """The visit's strength score: instrument, value and the instrument's range."""
    for name in ("mmt8", "cmas"):
        value = getattr(visit, name)
        if value is not None:
            scale = knowledge.scales[name]
            return name, float(value), scale.max - scale.min
    return None


def total_improvement_score(base: Visit, follow: Visit, knowledge: Knowledge,
                            juvenile: bool) -> tuple[TisResult | None, tuple[str, ...]]:
    """The TIS between two visits, or the measures that are missing."""
    scales = knowledge.scales
    values: dict[str, tuple[float, float, float]] = {}  # measure -> (base, follow, range)
    missing: list[str] = []

    def take(measure: str, a: float | None, b: float | None, scale: str) -> None:
        if a is None or b is None:
            missing.append(measure)
        else:
            values[measure] = (a, b, scales[scale].max - scales[scale].min)

    take("physician_global", base.physician_global, follow.physician_global, "vas")
    take("patient_global", base.patient_global, follow.patient_global, "vas")
    sa, sb = _strength(base, knowledge), _strength(follow, knowledge)
    if sa is None or sb is None or sa[0] != sb[0]:
        missing.append("strength (MMT-8 or CMAS, the same instrument at both visits)")
    else:
        take("strength", sa[1], sb[1], sa[0])
    take("function", base.chaq, follow.chaq, "chaq")
    ck_a = base.ck.u_per_l if base.ck else None
    ck_b = follow.ck.u_per_l if follow.ck else None
    if ck_a is None or ck_b is None or ck_a <= 0:
        missing.append("enzyme (CK value at both visits)")
    else:
        values["enzyme"] = (ck_a, ck_b, ck_a)
    take("extramuscular", base.extramuscular_global, follow.extramuscular_global, "vas")
    if missing:
        return None, tuple(missing)

    changes = []
    for measure_id, (a, b, denominator) in values.items():
        measure = knowledge.measures[measure_id]
        delta = (b - a) if measure.better == "higher" else (a - b)
        percent = round(100.0 * delta / denominator, 9)  # 9 places: no float noise at edges
        changes.append(MeasureChange(
            measure=measure_id, baseline=a, follow_up=b, percent_improvement=round(percent, 2),
            points=_band_points(percent, measure.bands, measure.points)))
    total = sum(c.points for c in changes)
    threshold = knowledge.thresholds["juvenile" if juvenile else "adult"]
    category = ("major" if total >= threshold.major else "moderate" if total >= threshold.moderate
                else "minimal" if total >= threshold.minimal else "none")
    return TisResult(baseline_date=base.date, follow_up_date=follow.date,
                     population=threshold.population, total=total, category=category,
                     measures=tuple(changes)), ()


def _uln(patient: Patient, knowledge: Knowledge, visit: Visit) -> float | None:
    if visit.ck is None:
        return None
    if visit.ck.upper_limit_u_per_l is not None:
        return visit.ck.upper_limit_u_per_l
    uln, _origin, bound = fallback_uln(patient, knowledge, visit.ck)
    return None if bound else uln


def _strength_improved(base: Visit, follow: Visit, knowledge: Knowledge) -> bool | None:
    """Improved beyond the TIS's zero-point band for strength (2% of the scale)."""
    no_change_edge = knowledge.measures["strength"].bands[0]
    pairs = []
    sa, sb = _strength(base, knowledge), _strength(follow, knowledge)
    if sa and sb and sa[0] == sb[0]:
        pairs.append((sa[1], sb[1], sa[2]))
    if base.mrc_proximal is not None and follow.mrc_proximal is not None:
        mrc = knowledge.scales["mrc"]
        pairs.append((base.mrc_proximal, follow.mrc_proximal, mrc.max - mrc.min))
    if not pairs:
        return None
    return any(100.0 * (b - a) / rng > no_change_edge for a, b, rng in pairs)


def _trend_text(patient: Patient, knowledge: Knowledge, visits: list[Visit]) -> list[str]:
    lines = []
    with_ck = [(v, v.ck.u_per_l) for v in visits if v.ck is not None
               and v.ck.u_per_l is not None]
    if len(with_ck) >= 2:
        (first, a), (last, b) = with_ck[0], with_ck[-1]
        if a is not None and b is not None:
            change = f" ({100 * (b - a) / a:+.0f}%)" if a else ""
            uln = _uln(patient, knowledge, last)
            where = f"; {b / uln:.1f} x ULN at the last visit" if uln else ""
            lines.append(f"CK {a:,.0f} -> {b:,.0f} U/L{change} from {first.date} to "
                         f"{last.date}{where}")
    scales = knowledge.scales
    for name, label in (("mmt8", f"MMT-8 (0-{scales['mmt8'].max:g})"),
                        ("cmas", f"CMAS (0-{scales['cmas'].max:g})"),
                        ("mrc_proximal", f"proximal MRC (0-{scales['mrc'].max:g})"),
                        ("mrs", f"mRS (0-{scales['mrs'].max:g})"),
                        ("chaq", f"CHAQ (0-{scales['chaq'].max:g})")):
        seen = [(v.date, getattr(v, name)) for v in visits if getattr(v, name) is not None]
        if len(seen) >= 2:
            lines.append(f"{label} {seen[0][1]:g} -> {seen[-1][1]:g} from {seen[0][0]} to "
                         f"{seen[-1][0]}")
    return lines


def _escalation(patient: Patient, knowledge: Knowledge, enmc_class: str, upto: dt.date
                ) -> tuple[str, str, Status]:
    given = {t.drug for t in patient.treatments if t.start is None or t.start <= upto}
    order: list[tuple[Drug, str, Status]] = []
    for line in ("early", "second"):
        for step in knowledge.steps:
            if step.line == line and enmc_class in step.applies_to:
                for dose_id in step.doses:
                    drug = knowledge.doses[dose_id].drug
                    if drug not in [o[0] for o in order]:
                        order.append((drug, step.source, step.status))
    for drug, source, status in order:
        if drug not in given:
            return (f"consider {knowledge.label('drug', drug.value)} (not yet given)", source,
                    status)
    if not order:
        return ("no IMNM escalation step applies to this ENMC class", "wang_liang_2023",
                Status.confirmed)
    return ("every listed escalation option has been given: refer to a specialist centre",
            "wang_liang_2023", Status.confirmed)


def _weakest(statuses: Iterable[Status]) -> Status:
    """The least established of the statuses a result rests on (the TIS is only as sure as
    the percent-change formula of each measure it adds up)."""
    order = (Status.unconfirmed, Status.heuristic, Status.derived, Status.secondary,
             Status.confirmed)
    found = set(statuses)
    return next((s for s in order if s in found), Status.confirmed)


def evaluate(patient: Patient, knowledge: Knowledge, enmc_class: str,
             parameters: dict[str, float | bool] | None = None) -> CourseResult:
    """Read the course of ``patient`` visit by visit."""
    params = {k: p.value for k, p in knowledge.parameters.items()} | dict(parameters or {})
    visits = sorted(patient.visits, key=lambda v: v.date)
    findings: list[Finding] = []
    onset = patient.onset_age_years()
    juvenile = onset is None or onset < knowledge.juvenile.onset_age_limit_years
    if len(visits) < 2:
        findings.append(Finding(
            rule_id="response.trend", kind=Kind.gap,
            conclusion="Fewer than two visits: no course to read yet.",
            source="rider_2017_jdm_response", status=Status.confirmed,
            missing=("a second visit",)))
        return CourseResult(patient_id=patient.id, visits=tuple(visits), tis=None,
                            tis_missing=("a second visit",), refractory=None,
                            refractory_since=None, timeline=(), findings=tuple(findings))

    tis, tis_missing = total_improvement_score(visits[0], visits[-1], knowledge, juvenile)
    if tis is not None:
        findings.append(Finding(
            rule_id="response.total_improvement_score", kind=Kind.conclusion,
            conclusion=f"Total Improvement Score {tis.total:g} ({tis.population} thresholds): "
            f"{tis.category} improvement from {tis.baseline_date} to {tis.follow_up_date}.",
            facts=tuple(f for c in tis.measures for f in facts(**{
                c.measure: f"{c.baseline:g} -> {c.follow_up:g} "
                f"({c.percent_improvement:+g}%, {c.points:g} points)"})),
            source="rider_2017_jdm_response", status=_weakest(
                s for c in tis.measures for s in (knowledge.measures[c.measure].status,
                                                  knowledge.measures[c.measure].change_status))))
    trend = _trend_text(patient, knowledge, visits)
    findings.append(Finding(
        rule_id="response.trend", kind=Kind.note,
        conclusion=("; ".join(trend) + ".") if trend else "No measure recorded at two visits.",
        facts=facts(visits=len(visits)), source="rider_2017_jdm_response",
        status=Status.confirmed,
        missing=tuple(f"TIS: {m.replace('_', ' ')}" for m in tis_missing)))

    timeline = [_status_at(patient, knowledge, visits[: i + 1], juvenile, params)
                for i in range(1, len(visits))]
    min_months = float(params["refractory_min_months"])
    first = next((s for s in timeline if s.refractory), None)
    if first is not None:
        suggestion, source, status = _escalation(patient, knowledge, enmc_class, first.date)
        findings.append(Finding(
            rule_id="response.refractory", kind=Kind.red_flag,
            conclusion=f"Refractory from {first.date}: inadequate response ({first.basis}) "
            f"after {first.months_on_combination:.1f} months of corticosteroid plus an "
            f"immunosuppressant (adequate trial: {min_months:g} months, heuristic parameter). "
            f"Escalation then: {suggestion}.",
            facts=facts(date=first.date, basis=first.basis),
            source=source, status=status))
    latest = timeline[-1]
    cs_only = _cs_alone_at(patient, visits[-1].date)
    if cs_only and latest.inadequate_response:
        findings.append(Finding(
            rule_id="response.corticosteroid_alone", kind=Kind.red_flag,
            conclusion=f"Inadequate response on corticosteroid alone ({latest.basis}): "
            "corticosteroids alone usually fail in pediatric IMNM; add an immunosuppressant "
            "or IVIg.", facts=facts(basis=latest.basis), source="wang_liang_2023",
            status=Status.confirmed))
    if latest.inadequate_response is None:
        findings.append(Finding(
            rule_id="response.refractory", kind=Kind.gap,
            conclusion=f"Cannot judge the response at the latest visit: {latest.basis}.",
            source="imnm_project", status=Status.heuristic,
            missing=("CK and strength (MMT-8, CMAS or MRC) at the first and latest visits",)))
    elif latest.refractory is False and latest.inadequate_response and first is None:
        findings.append(Finding(
            rule_id="response.refractory", kind=Kind.note,
            conclusion=f"Response inadequate so far ({latest.basis}); not yet an adequate "
            f"trial of combination therapy ({min_months:g} months, heuristic parameter). "
            "Reassess; intensify early if it stays inadequate.",
            facts=facts(months_on_combination=latest.months_on_combination),
            source="share_2017", status=Status.confirmed))
    elif first is not None and not latest.inadequate_response:
        findings.append(Finding(
            rule_id="response.after_escalation", kind=Kind.note,
            conclusion=f"At the latest visit ({latest.date}) the response is no longer "
            f"inadequate ({latest.basis}).", facts=facts(date=latest.date),
            source="imnm_project", status=Status.heuristic))
    return CourseResult(patient_id=patient.id, visits=tuple(visits), tis=tis,
                        tis_missing=tis_missing, refractory=latest.refractory,
                        refractory_since=first.date if first else None,
                        timeline=tuple(timeline), findings=tuple(findings))


def _cs_alone_at(patient: Patient, when: dt.date) -> bool:
    active = [t.drug for t in patient.treatments
              if (t.start is None or t.start <= when) and (t.end is None or t.end >= when)]
    return bool(active) and all(is_corticosteroid(d) for d in active)


def _status_at(patient: Patient, knowledge: Knowledge, visits: list[Visit], juvenile: bool,
               params: dict[str, float | bool]) -> VisitStatus:
    """Whether the response is inadequate, and the disease refractory, at the last of
    ``visits``, judged from the first of them and the treatments started by then."""
    base, last = visits[0], visits[-1]
    tis, _ = total_improvement_score(base, last, knowledge, juvenile)
    uln = _uln(patient, knowledge, last)
    ck_high: bool | None
    if last.ck is not None and last.ck.u_per_l is not None and uln:
        ck_high = last.ck.u_per_l > uln
    elif last.ck is not None and last.ck.interpretation is not None:
        ck_high = last.ck.interpretation.value == "elevated"
    else:
        ck_high = None
    improved = _strength_improved(base, last, knowledge)
    inadequate: bool | None
    if tis is not None:
        inadequate = tis.category == "none"
        basis = f"TIS {tis.total:g}, {tis.category} improvement"
    elif ck_high is None or improved is None:
        inadequate, basis = None, "CK or strength not recorded at both ends"
    else:
        inadequate = bool(ck_high and not improved)
        basis = (f"CK {'still above' if ck_high else 'within'} the upper limit, strength "
                 f"{'improved' if improved else 'not improved beyond the 2% TIS band'}")

    upto = last.date
    started = [t for t in patient.treatments if t.start is not None and t.start <= upto]
    cs = [t.start for t in started if is_corticosteroid(t.drug) and t.start]
    other = [t.start for t in started if not is_corticosteroid(t.drug)
             and t.drug is not Drug.other and t.start]
    need_other = bool(params["refractory_requires_immunosuppressant"])
    if not cs or (need_other and not other):
        return VisitStatus(date=upto, months_on_combination=None,
                           inadequate_response=inadequate, basis=basis,
                           refractory=False if inadequate is not None else None)
    start = max(min(cs), min(other)) if other else min(cs)
    months = (upto - start).days / DAYS_PER_MONTH
    enough = months >= float(params["refractory_min_months"])
    refractory = None if inadequate is None else bool(inadequate and enough)
    return VisitStatus(date=upto, months_on_combination=round(months, 1),
                       inadequate_response=inadequate, basis=basis, refractory=refractory)

