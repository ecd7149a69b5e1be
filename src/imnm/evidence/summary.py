"""Recompute the review's Total row and text figures from Table 1's rows, compare them with the
published figures, and optionally add the patient-level case records.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from imnm.evidence.records import CaseRecord
from imnm.evidence.table import FEATURES, ONSETS, Table1
from imnm.knowledge import load_knowledge
from imnm.patient import Antibody, AntibodyStatus, Patient, Sex
from imnm.rules._facts import classify_labels


class Figure(BaseModel):
    """One figure: as published, as recomputed, and whether they agree."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    published: str
    recomputed: str
    agrees: bool | None  # None: the figure cannot be recomputed from the table
    note: str = ""


class CaseContribution(BaseModel):
    """What one patient-level case record adds to the counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    literature_id: str
    antibody: str  # HMGCR, SRP, seronegative or unknown
    sex: str
    onset: str
    dysphagia: bool | None
    lung: bool | None
    heart: bool | None
    skin: bool | None
    first_called_dystrophy: bool


class Summary(BaseModel):
    """The recomputed figures and, when asked, the totals with added cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    figures: tuple[Figure, ...]
    disagreements: tuple[Figure, ...]
    features_over_known: dict[str, tuple[int, int]]
    cases_included: bool
    cases: tuple[CaseContribution, ...]
    with_cases: dict[str, str]


def _pct(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "n/a"


def _ratio(female: int, male: int) -> str:
    return f"{female / male:.1f}:1" if male else "n/a"


def contribution(case: CaseRecord) -> CaseContribution:
    """Read one case record into the table's columns."""
    p: Patient = case.patient
    hmgcr, srp = p.antibody(Antibody.HMGCR), p.antibody(Antibody.SRP)
    if hmgcr is AntibodyStatus.positive:
        antibody = "HMGCR"
    elif srp is AntibodyStatus.positive:
        antibody = "SRP"
    elif hmgcr is AntibodyStatus.negative and srp is AntibodyStatus.negative:
        antibody = "seronegative"
    else:
        antibody = "unknown"
    pattern = p.onset.effective_pattern()
    labels = classify_labels(p, load_knowledge())
    all_labels = [d.label for d in p.diagnoses] + ([case.initial_diagnosis]
                                                   if case.initial_diagnosis else [])
    dystrophy = any(lab.set == "dystrophy" for lab in labels) or any(
        "dystroph" in text.lower() for text in all_labels)
    return CaseContribution(
        case_id=p.id, literature_id=case.literature_id, antibody=antibody,
        sex=p.sex.value if p.sex in (Sex.female, Sex.male) else "unknown",
        onset=pattern.value if pattern else "unknown",
        dysphagia=p.extramuscular.dysphagia, lung=p.extramuscular.interstitial_lung_disease,
        heart=p.extramuscular.cardiac, skin=p.extramuscular.skin.any_present(),
        first_called_dystrophy=dystrophy)


def summarise(table: Table1, case_records: Sequence[CaseRecord] = (),
              include_cases: bool = False) -> Summary:
    """Every published figure beside its recomputation; disagreements listed apart."""
    pub, rows = table.published, table.rows
    total = sum(r.patients for r in rows)
    female = sum(r.female for r in rows)
    male = sum(r.male for r in rows)
    figures: list[Figure] = []

    def add(name: str, published: object, recomputed: object, note: str = "") -> None:
        figures.append(Figure(name=name, published=str(published), recomputed=str(recomputed),
                              agrees=str(published) == str(recomputed), note=note))

    add("patients", pub.patients, total)
    add("anti-HMGCR", pub.hmgcr, sum(r.patients for r in rows if r.antibody == "HMGCR"))
    add("anti-SRP", pub.srp, sum(r.patients for r in rows if r.antibody == "SRP"))
    add("female", pub.female, female)
    add("male", pub.male, male)
    add("sex unknown", pub.sex_unknown, sum(r.sex_unknown for r in rows))
    add("female:male", pub.female_to_male, _ratio(female, male))
    for onset in ONSETS:
        add(f"onset {onset}" + (" (printed 'Slow')" if onset == "chronic" else ""),
            getattr(pub, f"onset_{onset}"), sum(r.onset(onset) for r in rows))
    known_onset = total - sum(r.onset("unknown") for r in rows)
    for onset, text in (("subacute", pub.subacute_text), ("insidious", pub.insidious_text)):
        n = sum(r.onset(onset) for r in rows)
        add(f"{onset} share (text)", text, f"{_pct(n, known_onset)} ({n}/{known_onset})")
    over_known: dict[str, tuple[int, int]] = {}
    for feature in FEATURES:
        positive = sum(getattr(r, feature)[0] for r in rows)
        known = sum(getattr(r, feature)[1] for r in rows)
        over_known[feature] = (positive, known)
        published_n = getattr(pub, feature)[0]
        add(f"{feature} (of all 84)", f"{published_n} ({getattr(pub, f'{feature}_percent')}%)",
            f"{positive} ({_pct(positive, total)})",
            note=f"over children with it reported: {positive}/{known} ({_pct(positive, known)})")
    add("first called a dystrophy (MD, CMD, LGMD, FSHD)", pub.initial_dystrophy,
        sum(r.first_called_dystrophy() for r in rows))
    add("onset age: children with detailed data", pub.mean_onset_age_n,
        sum(r.patients for r in rows if not r.detail_excluded),
        note="the footnote's four excluded studies left out")
    figures.append(Figure(
        name="mean onset age (years)", published=f"{pub.mean_onset_age_years:g}",
        recomputed="not recomputable", agrees=None,
        note="the table gives age ranges per study, not each child's age"))

    contributions = tuple(contribution(c) for c in case_records) if include_cases else ()
    with_cases: dict[str, str] = {}
    if include_cases:
        added = list(contributions)
        n = total + len(added)
        with_cases["patients"] = str(n)
        for group in ("HMGCR", "SRP", "seronegative", "unknown"):
            base = sum(r.patients for r in rows if r.antibody == group)
            extra = sum(1 for c in added if c.antibody == group)
            if base or extra:
                with_cases[f"antibody {group}"] = str(base + extra)
        f2 = female + sum(c.sex == "female" for c in added)
        m2 = male + sum(c.sex == "male" for c in added)
        with_cases["female:male"] = f"{f2}:{m2} ({_ratio(f2, m2)})"
        for onset in ONSETS:
            with_cases[f"onset {onset}"] = str(sum(r.onset(onset) for r in rows)
                                               + sum(c.onset == onset for c in added))
        for feature in FEATURES:
            positive, known = over_known[feature]
            positive += sum(getattr(c, feature) is True for c in added)
            known += sum(getattr(c, feature) is not None for c in added)
            with_cases[feature] = f"{positive}/{known} ({_pct(positive, known)})"
        called = sum(r.first_called_dystrophy() for r in rows) + sum(
            c.first_called_dystrophy for c in added)
        with_cases["first called a dystrophy"] = f"{called}/{n} ({_pct(called, n)})"
    return Summary(figures=tuple(figures),
                   disagreements=tuple(f for f in figures if f.agrees is False),
                   features_over_known=over_known, cases_included=include_cases,
                   cases=contributions, with_cases=with_cases)
