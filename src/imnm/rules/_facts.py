"""Facts derived from a patient that several rules share: CK in multiples of its upper limit,
diagnosis labels sorted into code sets, and whether a biopsy shows necrotizing myopathy.

Each helper answers True, False or None (unknown) and says how it got there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from imnm.knowledge import Knowledge
from imnm.patient import (
    Antibody,
    AntibodyStatus,
    AssayMethod,
    Biopsy,
    BiopsyConclusion,
    Diagnosis,
    EnzymeResult,
    Patient,
    Sex,
)


@dataclass(frozen=True)
class CkReading:
    """One CK result read against an upper limit."""

    index: int
    u_per_l: float | None
    uln_u_per_l: float | None
    uln_origin: str  # "laboratory", "fallback: ..." or "none"
    elevated: bool | None
    bound_only: bool = False  # the limit is only the highest fallback (age unknown)

    @property
    def multiple(self) -> float | None:
        """The result in multiples of the upper limit used."""
        if self.u_per_l is None or self.uln_u_per_l is None:
            return None
        return self.u_per_l / self.uln_u_per_l


@dataclass(frozen=True)
class CkSummary:
    """All CK results read, the most abnormal one, and whether CK has been elevated."""

    readings: tuple[CkReading, ...]
    elevated: bool | None
    peak: CkReading | None
    gaps: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """The peak as text, e.g. '12,000 U/L (24.0 x ULN 499, laboratory)'."""
        peak = self.peak
        if peak is None:
            return "no CK result"
        if peak.u_per_l is None:
            return "elevated (laboratory flag, no value)" if peak.elevated else "normal (flag)"
        text = f"{peak.u_per_l:,.0f} U/L"
        if peak.multiple is not None and peak.uln_u_per_l is not None:
            text += f" ({peak.multiple:.1f} x ULN {peak.uln_u_per_l:,.0f} U/L, {peak.uln_origin})"
        return text


def fallback_uln(patient: Patient, knowledge: Knowledge, result: EnzymeResult
                 ) -> tuple[float | None, str, bool]:
    """A CK upper limit for a result that carries none, its origin, and whether it is only a
    bound (always, for a fallback).

    With the child's age known, the band for their sex and age is used (unknown sex: the
    higher, male, limit). With the age unknown, the highest limit of any band is used. Either
    way a fallback is a bound, not the laboratory's answer: a value above it is elevated, a
    value at or below it stays undecided (the laboratory's own limit may be lower), and the
    laboratory limit is named as missing.
    """
    when = result.date or patient.reference_date()
    age = patient.age_at(when)
    if age is None:
        if not knowledge.ck_bands:
            return None, "none: no laboratory limit and no reference bands", False
        top = max(knowledge.ck_bands, key=lambda b: b.upper_limit)
        return (top.upper_limit,
                f"fallback: highest limit in {top.source} (age unknown; conservative)", True)
    sex = patient.sex if patient.sex in (Sex.female, Sex.male) else Sex.male
    for band in knowledge.ck_bands:
        if band.covers(sex, age):
            origin = (f"fallback: {band.source} {band.sex} {band.min_age_years:g}"
                      f"{'-' + format(band.max_age_years, 'g') if band.max_age_years else '+'} y"
                      f"{' (sex unknown: male limit)' if sex is not patient.sex else ''}")
            return band.upper_limit, origin, True
    return None, f"none: no reference band for age {age:.2f} y", False


def read_ck(patient: Patient, knowledge: Knowledge) -> CkSummary:
    """Read every CK result against its own upper limit (or a cited fallback)."""
    readings: list[CkReading] = []
    gaps: list[str] = []
    for index, result in enumerate(patient.ck):
        value = result.u_per_l
        uln = result.upper_limit_u_per_l
        origin, bound_only = "laboratory", False
        if value is not None and uln is None:
            uln, origin, bound_only = fallback_uln(patient, knowledge, result)
        if value is not None and uln is not None and not (bound_only and value <= uln):
            elevated: bool | None = value > uln
        elif result.interpretation is not None:
            elevated = result.interpretation.value == "elevated"
            origin = "laboratory flag"
        else:
            elevated = None
            gaps.append(f"ck[{index}]: upper reference limit ({origin})")
        readings.append(CkReading(index, value, uln, origin, elevated, bound_only))
    known = [r for r in readings if r.elevated is not None]
    if any(r.elevated for r in known):
        overall: bool | None = True
    elif readings and len(known) == len(readings):
        overall = False
    else:
        overall = None
    peak = _peak(readings)
    return CkSummary(tuple(readings), overall, peak, tuple(gaps))


def _peak(readings: list[CkReading]) -> CkReading | None:
    if not readings:
        return None

    def key(r: CkReading) -> tuple[int, float, float]:
        multiple = r.multiple
        return (
            1 if r.elevated else 0,
            multiple if multiple is not None else -1.0,
            r.u_per_l if r.u_per_l is not None else -1.0,
        )

    return max(readings, key=key)


def other_enzymes_elevated(patient: Patient) -> bool | None:
    """LDH, AST or ALT (the EULAR/ACR enzyme item) above the laboratory's limit."""
    flags: list[bool | None] = []
    for result in patient.other_enzymes:
        if result.analyte == "aldolase":
            continue
        value, uln = result.u_per_l, result.upper_limit_u_per_l
        if value is not None and uln is not None:
            flags.append(value > uln)
        elif result.interpretation is not None:
            flags.append(result.interpretation.value == "elevated")
        else:
            flags.append(None)
    if any(flags):
        return True
    if flags and all(f is False for f in flags):
        return False
    return None


# --------------------------------------------------------------------------- diagnoses

_SET_ORDER = ("myositis", "dystrophy", "unexplained_myopathy")


@dataclass(frozen=True)
class Label:
    """One active diagnosis label and the code set it falls in."""

    diagnosis: Diagnosis
    set: str | None  # dystrophy | myositis | unexplained_myopathy | drug_induced_myopathy
    via: str  # "code", "keyword" or "unrecognised code" / "no match"

    def text(self) -> str:
        """'label [system code]'."""
        d = self.diagnosis
        return f"{d.label} [{d.system.value} {d.code}]" if d.code and d.system else d.label


def classify_labels(patient: Patient, knowledge: Knowledge) -> list[Label]:
    """Sort the child's active diagnosis labels into code sets, by code, else by keyword."""
    labels: list[Label] = []
    for diagnosis in patient.active_diagnoses():
        if diagnosis.code and diagnosis.system:
            entry = knowledge.lookup_code(diagnosis.system.value, diagnosis.code)
            if entry is not None:
                labels.append(Label(diagnosis, entry.set, "code"))
                continue
        found = _keyword_set(diagnosis.label, knowledge)
        via = "keyword" if found else ("unrecognised code" if diagnosis.code else "no match")
        labels.append(Label(diagnosis, found, via))
    return labels


def _keyword_set(text: str, knowledge: Knowledge) -> str | None:
    lowered = text.lower()
    for set_name in _SET_ORDER:
        for keyword in knowledge.keywords:
            if keyword.set == set_name and re.search(
                rf"(?<![a-z0-9]){re.escape(keyword.text)}(?![a-z0-9])", lowered
            ):
                return set_name
    return None


# --------------------------------------------------------------------------- antibodies, biopsy


def antibody_status(patient: Patient, which: Antibody) -> str:
    """'positive', 'negative', 'not tested' or 'not reported'."""
    status = patient.antibody(which)
    if status is None:
        return "not reported"
    return "not tested" if status is AntibodyStatus.not_tested else status.value


def line_blot_only(patient: Patient, which: Antibody) -> bool:
    """A positive result that came from a line blot (which needs confirming)."""
    result = patient.antibodies.get(which)
    return bool(result and result.status is AntibodyStatus.positive
                and result.method is AssayMethod.line_blot)


_OTHER_IIM_FEATURES = ("perifascicular_atrophy", "rimmed_vacuoles", "cd8_invasion")
_NOT_NECROTIZING = (
    BiopsyConclusion.dermatomyositis,
    BiopsyConclusion.antisynthetase,
    BiopsyConclusion.inclusion_body_myositis,
    BiopsyConclusion.dystrophic,  # necrosis and regeneration in a dystrophy: not IMNM's
    BiopsyConclusion.normal,
)


def necrotizing_biopsy(biopsy: Biopsy | None) -> tuple[bool | None, str]:
    """Whether the biopsy shows necrotizing myopathy (the ENMC pathology element), and why."""
    if biopsy is None:
        return None, "no biopsy"
    other = [f for f in _OTHER_IIM_FEATURES if getattr(biopsy, f) is True]
    if other:
        return False, "features of another myopathy: " + ", ".join(
            f.replace("_", " ") for f in other)
    if biopsy.conclusion is BiopsyConclusion.necrotizing_myopathy:
        return True, "pathologist's conclusion: necrotizing myopathy"
    if biopsy.conclusion is not None and biopsy.conclusion in _NOT_NECROTIZING:
        return False, f"pathologist's conclusion: {biopsy.conclusion.value}"
    if biopsy.necrosis is True:
        unreported = [f.replace("_", " ") for f in _OTHER_IIM_FEATURES
                      if getattr(biopsy, f) is None]
        if unreported:
            # Not reported is unknown, never absent: the necrosis could belong to another
            # inflammatory myopathy.
            return None, ("necrotic fibres; not reported whether there is "
                          + ", ".join(unreported))
        return True, "necrotic fibres without features of another inflammatory myopathy"
    if biopsy.necrosis is False:
        return False, "no necrotic fibres"
    return None, "necrosis not reported"
