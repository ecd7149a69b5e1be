"""Classification: ENMC 2017 IMNM subtypes, and the 2017 EULAR/ACR IIM score.

ENMC 2017 (``classification.enmc_2017``)
    Each subtype in ``enmc_2017.toml`` lists the elements it requires. Every element is
    evaluated to true, false or unknown. A subtype whose elements are all true is the class;
    if every subtype has a false element the child is ``not_imnm``; otherwise the class is
    ``insufficient_data`` and the unknown elements are named as missing. A diagnostic genetic
    result with no positive IMNM antibody means another cause is confirmed: ``not_imnm``.
    Both antibodies positive is reported as ``insufficient_data`` until confirmed.

EULAR/ACR 2017 (``classification.eular_acr_2017``)
    The sum of item points with or without biopsy, the category from the published cut-offs,
    an approximate probability, the juvenile subgroup, the items not known and the score they
    could add. It has no anti-HMGCR or anti-SRP item, and imnm says so every time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from imnm.findings import Fact, Finding, Kind, facts, recommended
from imnm.knowledge import Knowledge, Status
from imnm.patient import Antibody, AntibodyStatus, AssayMethod, GeneticResult, Patient
from imnm.rules._facts import CkSummary, necrotizing_biopsy, other_enzymes_elevated, read_ck

ENMC_CLASSES = ("anti_hmgcr_imnm", "anti_srp_imnm", "seronegative_imnm", "not_imnm",
                "insufficient_data")


@dataclass(frozen=True)
class EnmcResult:
    """The ENMC 2017 class and how it was reached."""

    cls: str
    elements: dict[str, bool | None]
    element_reasons: dict[str, str]
    missing: tuple[str, ...]
    caveats: tuple[str, ...]
    reasons: tuple[str, ...]
    source: str
    status: Status


@dataclass(frozen=True)
class EularResult:
    """The 2017 EULAR/ACR score, category and subgroup."""

    with_biopsy: bool
    score: float
    max_score_if_unknown_present: float
    category: str
    category_if_unknown_present: str
    probability: float
    items: dict[str, bool | None]
    unknown_items: tuple[str, ...]
    subgroup: str | None
    juvenile: bool | None
    note: str
    unknown_why: dict[str, str] = field(default_factory=dict)  # item -> the missing fact


@dataclass(frozen=True)
class Classification:
    """Both classifications and their findings."""

    enmc: EnmcResult
    eular: EularResult
    findings: tuple[Finding, ...]


_Evaluator = Callable[[Patient, CkSummary], tuple[bool | None, str]]


def _antibody_positive(which: Antibody) -> _Evaluator:
    def evaluate(patient: Patient, _ck: CkSummary) -> tuple[bool | None, str]:
        status = patient.antibody(which)
        if status is AntibodyStatus.positive:
            return True, f"anti-{which.value} positive"
        if status is AntibodyStatus.negative:
            return False, f"anti-{which.value} negative"
        return None, f"anti-{which.value} {'not tested' if status else 'not reported'}"
    return evaluate


def _both_negative(patient: Patient, _ck: CkSummary) -> tuple[bool | None, str]:
    states = [patient.antibody(a) for a in (Antibody.HMGCR, Antibody.SRP)]
    if any(s is AntibodyStatus.positive for s in states):
        return False, "an IMNM antibody is positive"
    if all(s is AntibodyStatus.negative for s in states):
        return True, "anti-HMGCR and anti-SRP negative"
    return None, "anti-HMGCR and/or anti-SRP not tested"


def _ck(patient: Patient, ck: CkSummary) -> tuple[bool | None, str]:
    return ck.elevated, f"peak CK {ck.describe()}"


def _weakness(patient: Patient, _ck: CkSummary) -> tuple[bool | None, str]:
    weak = patient.weakness.has_proximal_weakness()
    return weak, {True: "proximal weakness", False: "proximal strength normal",
                  None: "proximal strength not recorded"}[weak]


def _biopsy(patient: Patient, _ck: CkSummary) -> tuple[bool | None, str]:
    return necrotizing_biopsy(patient.biopsy)


def _srp_confirmed(patient: Patient, _ck: CkSummary) -> tuple[bool | None, str]:
    result = patient.antibodies.get(Antibody.SRP)
    if result is None or result.status is not AntibodyStatus.positive:
        return True, "no positive anti-SRP to confirm"
    if result.method is AssayMethod.line_blot:
        return False, "anti-SRP positive by line blot"
    if result.method is None:
        return None, "anti-SRP assay method not recorded"
    return True, f"anti-SRP by {result.method.value}"


def _other_causes(patient: Patient, _ck: CkSummary) -> tuple[bool | None, str]:
    genetic = patient.genetic_testing
    if genetic.result is GeneticResult.diagnostic:
        return False, f"genetic diagnosis: {genetic.diagnosis or ', '.join(genetic.genes)}"
    if genetic.result is GeneticResult.negative:
        return True, "genetic testing negative"
    return None, "genetic testing " + (genetic.result.value if genetic.result else "not reported")


ELEMENTS: dict[str, _Evaluator] = {
    "ck_elevated": _ck,
    "proximal_weakness": _weakness,
    "anti_hmgcr_positive": _antibody_positive(Antibody.HMGCR),
    "anti_srp_positive": _antibody_positive(Antibody.SRP),
    "hmgcr_and_srp_negative": _both_negative,
    "necrotizing_biopsy": _biopsy,
    "srp_result_confirmed": _srp_confirmed,
    "other_causes_excluded": _other_causes,
}


def classify_enmc(patient: Patient, knowledge: Knowledge, ck: CkSummary) -> EnmcResult:
    """Apply the ENMC 2017 definitions in ``enmc_2017.toml``."""
    values: dict[str, bool | None] = {}
    reasons: dict[str, str] = {}
    for element_id in knowledge.enmc_elements:
        value, why = ELEMENTS[element_id](patient, ck)
        values[element_id], reasons[element_id] = value, why

    subtypes = knowledge.enmc_subtypes
    met = [s for s in subtypes if all(values[e] is True for e in s.requires)]
    source = subtypes[0].source if subtypes else "enmc_224_2018"
    positive = [a for a in (Antibody.HMGCR, Antibody.SRP)
                if patient.antibody(a) is AntibodyStatus.positive]

    if patient.genetic_testing.confirmed and not positive:
        why = reasons["other_causes_excluded"]
        return EnmcResult("not_imnm", values, reasons, (), (),
                          (f"another cause is confirmed ({why}); the ENMC definitions "
                           "require other causes to be excluded",), source, Status.unconfirmed)
    if patient.genetic_testing.confirmed and positive:
        # A genetic diagnosis (e.g. LGMD R28, biallelic HMGCR variants: the gene is not the
        # antibody) and a positive IMNM antibody cannot both settle the diagnosis.
        antibodies = " and ".join(f"anti-{a.value}" for a in positive)
        return EnmcResult(
            "insufficient_data", values, reasons,
            (f"resolution of a conflict: {reasons['other_causes_excluded']}, yet {antibodies} "
             "positive; confirm the antibody with a second assay and read a muscle biopsy "
             "before treating as IMNM",),
            (), (reasons["other_causes_excluded"],
                 *(reasons[f"anti_{a.value.lower()}_positive"] for a in positive)),
            source, Status.unconfirmed)
    if len(met) > 1:
        return EnmcResult(
            "insufficient_data", values, reasons,
            ("confirmation of the antibody results: anti-HMGCR and anti-SRP are both reported "
             "positive, which is exceptional",),
            (), tuple(reasons[e] for e in ("anti_hmgcr_positive", "anti_srp_positive")),
            source, Status.unconfirmed)
    if met:
        subtype = met[0]
        caveats = tuple(
            f"{knowledge.enmc_elements[c].missing} ({reasons[c]})"
            for c in subtype.caveats if values[c] is not True
        )
        return EnmcResult(subtype.id, values, reasons, (), caveats,
                          tuple(reasons[e] for e in subtype.requires),
                          subtype.source, subtype.status)

    open_subtypes = [s for s in subtypes if not any(values[e] is False for e in s.requires)]
    if not open_subtypes:
        not_met = []
        for s in subtypes:
            failed = [reasons[e] for e in s.requires if values[e] is False]
            not_met.append(f"{s.says}: {failed[0]}")
        return EnmcResult("not_imnm", values, reasons, (), (), tuple(not_met), source,
                          Status.unconfirmed)

    missing: list[str] = []
    antibody_question_open = values["hmgcr_and_srp_negative"] is None
    shared = {e for s in open_subtypes if s.id != "seronegative_imnm" for e in s.requires}
    for s in open_subtypes:
        for e in s.requires:
            if values[e] is not None or (e == "hmgcr_and_srp_negative" and shared):
                continue
            text = knowledge.enmc_elements[e].missing
            if e == "necrotizing_biopsy" and patient.biopsy is not None:
                text = f"{text} ({reasons[e]})"  # a biopsy whose report leaves it open
            if s.id == "seronegative_imnm" and e not in shared and antibody_question_open:
                text = f"if anti-HMGCR and anti-SRP are negative: {text}"
            if text not in missing:
                missing.append(text)
    known = tuple(reasons[e] for e in ("ck_elevated", "proximal_weakness"))
    return EnmcResult("insufficient_data", values, reasons, tuple(missing), (), known, source,
                      Status.unconfirmed)


# --------------------------------------------------------------------------- EULAR/ACR 2017


def _eular_items(patient: Patient, knowledge: Knowledge, ck: CkSummary
                 ) -> dict[str, bool | None]:
    w = patient.weakness
    skin = patient.extramuscular.skin
    no_skin = skin.any_skin_lesion is False
    onset_age = patient.onset_age_years()
    symmetric = w.symmetric

    def symmetric_weak(weak: bool | None) -> bool | None:
        if weak is False or symmetric is False:
            return False
        if weak is True and symmetric is True:
            return True
        return None

    def skin_item(value: bool | None) -> bool | None:
        return False if value is None and no_skin else value

    jo1 = patient.antibody(Antibody.JO1)
    enzyme_flags = (ck.elevated, other_enzymes_elevated(patient))
    enzymes: bool | None = (True if any(enzyme_flags)
                            else False if all(f is False for f in enzyme_flags) else None)
    # Onset is no later than today: a child whose onset age is not recorded but who is
    # younger than an age band now cannot have had onset in it.
    age_now = patient.age_at(patient.reference_date())

    def age_item(item_id: str) -> bool | None:
        item = knowledge.eular_items[item_id]
        if onset_age is not None:
            return item.age_band_contains(onset_age)
        if age_now is not None and item.onset_age_min is not None \
                and age_now < item.onset_age_min:
            return False
        return None

    items: dict[str, bool | None] = {
        "age_18_to_40": age_item("age_18_to_40"),
        "age_40_or_more": age_item("age_40_or_more"),
        "proximal_upper_weakness": symmetric_weak(w.proximal_upper_weak()),
        "proximal_lower_weakness": symmetric_weak(w.proximal_lower_weak()),
        "neck_flexor_predominance": w.neck_flexor_predominance(),
        "legs_proximal_predominance": w.legs_proximal_predominance(),
        "heliotrope_rash": skin_item(skin.heliotrope_rash),
        "gottron_papules": skin_item(skin.gottron_papules),
        "gottron_sign": skin_item(skin.gottron_sign),
        "dysphagia": patient.extramuscular.dysphagia,
        "anti_jo1": {AntibodyStatus.positive: True, AntibodyStatus.negative: False}.get(
            jo1) if jo1 else None,
        "elevated_enzymes": enzymes,
    }
    biopsy = patient.biopsy
    if biopsy is not None:
        items |= {
            "biopsy_endomysial_infiltrate": biopsy.endomysial_infiltrate_not_invading,
            "biopsy_perimysial_perivascular": biopsy.perimysial_perivascular_infiltrate,
            "biopsy_perifascicular_atrophy": biopsy.perifascicular_atrophy,
            "biopsy_rimmed_vacuoles": biopsy.rimmed_vacuoles,
        }
    return items


def _why_unknown(item: str, patient: Patient) -> str:
    """The fact whose absence leaves a EULAR/ACR item unknown, in words."""
    w = patient.weakness
    if item.startswith("age_"):
        return "age at onset not recorded"
    if item in ("proximal_upper_weakness", "proximal_lower_weakness"):
        limb = "upper" if "upper" in item else "lower"
        weak = w.proximal_upper_weak() if limb == "upper" else w.proximal_lower_weak()
        if weak is True and w.symmetric is None:
            return (f"proximal {limb}-limb weakness is recorded, but not whether it is "
                    "symmetric (the item needs symmetric weakness)")
        return f"proximal {limb}-limb strength (MRC grade) not recorded"
    if item == "neck_flexor_predominance":
        return "neck flexor and extensor strength not both recorded"
    if item == "legs_proximal_predominance":
        return "proximal and distal leg strength not both recorded"
    if item in ("heliotrope_rash", "gottron_papules", "gottron_sign"):
        return "skin findings not recorded"
    if item == "dysphagia":
        return "swallowing not recorded"
    if item == "anti_jo1":
        return "anti-Jo-1 not tested or not recorded"
    if item == "elevated_enzymes":
        return "no CK, LDH, AST or ALT with its upper limit recorded"
    if item.startswith("biopsy_"):
        return "not reported in the biopsy"
    return "not recorded"


def score_eular(patient: Patient, knowledge: Knowledge, ck: CkSummary) -> EularResult:
    """The 2017 EULAR/ACR score, with the items that are not known named."""
    items = _eular_items(patient, knowledge, ck)
    with_biopsy = patient.biopsy is not None

    def points(item_id: str) -> float:
        item = knowledge.eular_items[item_id]
        value = item.points_with_biopsy if with_biopsy else item.points_without_biopsy
        return value or 0.0

    score = round(sum(points(i) for i, v in items.items() if v is True), 2)
    unknown = tuple(i for i, v in items.items() if v is None and points(i) > 0)
    # Age items exclude each other: an unknown age can add at most the larger one.
    unknown_points = [points(i) for i in unknown if not i.startswith("age_")]
    age_unknown = [points(i) for i in unknown if i.startswith("age_")]
    maximum = round(score + sum(unknown_points) + max(age_unknown, default=0.0), 2)

    def category(value: float) -> str:
        chosen = knowledge.eular_categories[0].id
        for cat in knowledge.eular_categories:
            cut = cat.min_score_with_biopsy if with_biopsy else cat.min_score_without_biopsy
            if value >= cut:
                chosen = cat.id
        return chosen

    prob = knowledge.eular_probability
    intercept = prob.intercept_with_biopsy if with_biopsy else prob.intercept_without_biopsy
    probability = 1.0 / (1.0 + math.exp(intercept - score))

    onset_age = patient.onset_age_years()
    juvenile = None if onset_age is None else onset_age < knowledge.juvenile.onset_age_limit_years
    cat = category(score)
    skin_signs = [items[i] for i in ("heliotrope_rash", "gottron_papules", "gottron_sign")]
    subgroup: str | None = None
    if cat in ("probable_iim", "definite_iim"):
        if juvenile is True:
            subgroup = ("juvenile_dermatomyositis" if any(skin_signs)
                        else "juvenile_myositis_other_than_jdm")
        elif juvenile is False:
            if any(skin_signs):
                subgroup = "dermatomyositis"
            elif items.get("biopsy_rimmed_vacuoles"):
                subgroup = "inclusion_body_myositis"
            else:
                subgroup = "polymyositis_including_imnm"
    note = knowledge.recommendation("caution.eular_score_blind_to_imnm").says
    return EularResult(with_biopsy, score, maximum, cat, category(maximum), probability,
                       items, unknown, subgroup, juvenile, note,
                       {i: _why_unknown(i, patient) for i in unknown})


def evaluate_enmc(patient: Patient, knowledge: Knowledge, ck: CkSummary | None = None
                  ) -> tuple[EnmcResult, Finding]:
    """The ENMC 2017 class and its finding alone (what a CDS Hooks card says of it)."""
    enmc = classify_enmc(patient, knowledge, read_ck(patient, knowledge) if ck is None else ck)
    words = {s.id: s.says for s in knowledge.enmc_subtypes}
    if enmc.cls in words:
        text = f"ENMC 2017: {words[enmc.cls]}."
    elif enmc.cls == "not_imnm":
        text = "ENMC 2017: the IMNM definitions are not met."
    else:
        text = "ENMC 2017: not enough data to classify."
    if enmc.caveats:
        text += " Caveat: " + "; ".join(enmc.caveats) + "."
    return enmc, Finding(
        rule_id="classification.enmc_2017", kind=Kind.conclusion, conclusion=text,
        facts=tuple(Fact(field=e, value=why) for e, why in enmc.element_reasons.items()),
        source=enmc.source, status=enmc.status, missing=enmc.missing,
    )


def evaluate(patient: Patient, knowledge: Knowledge) -> Classification:
    """Both classifications for one child, with their findings."""
    ck = read_ck(patient, knowledge)
    enmc, enmc_finding = evaluate_enmc(patient, knowledge, ck)
    eular = score_eular(patient, knowledge, ck)
    findings: list[Finding] = [enmc_finding]

    item_words = {k: v.says for k, v in knowledge.eular_items.items()}
    present = [item_words[i] for i, v in eular.items.items() if v is True]
    cat_words: dict[str, str] = {c.id: c.says for c in knowledge.eular_categories}
    text = (f"EULAR/ACR 2017 ({'with' if eular.with_biopsy else 'without'} biopsy): score "
            f"{eular.score:g}, {cat_words[eular.category]}; probability about "
            f"{eular.probability:.0%} (approximate).")
    if eular.unknown_items:
        text += (f" Unknown items could raise the score to {eular.max_score_if_unknown_present:g}"
                 f" ({cat_words[eular.category_if_unknown_present]}).")
    if eular.subgroup:
        text += f" Subgroup: {knowledge.label('eular_subgroup', eular.subgroup)}."
    findings.append(Finding(
        rule_id="classification.eular_acr_2017", kind=Kind.conclusion, conclusion=text,
        facts=facts(items_present=present or ["none"],
                    onset_age_years=(round(o, 1) if (o := patient.onset_age_years()) is not None
                                     else None)),
        source="eular_acr_2017", status=Status.confirmed,
        missing=tuple(f"{item_words[i]}: {eular.unknown_why[i]}" for i in eular.unknown_items),
    ))
    findings.append(recommended(knowledge, "caution.eular_score_blind_to_imnm"))
    return Classification(enmc, eular, tuple(findings))
