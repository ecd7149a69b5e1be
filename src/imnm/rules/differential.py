"""Differential: the biopsy and antibody pattern against IMNM, DM, ASS, IBM and dystrophy.

For each subgroup the rule lists what supports it and what speaks against it, feature by
feature from ``pathology.toml`` and ``antibodies.toml``; it never turns them into a
probability. A feature the pattern expects to be absent (e.g. no rimmed vacuoles in IMNM)
counts against the subgroup when present and is not listed as support when absent.
``differential.atypical_antibody`` says plainly when a positive antibody points to another
subgroup than a necrotizing biopsy (anti-Mi-2 with IMNM in the 2025 case series).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imnm.findings import Fact, Finding, Kind, facts, recommended
from imnm.knowledge import Knowledge, Status
from imnm.patient import Antibody, AntibodyStatus, GeneticResult, Patient
from imnm.rules._facts import classify_labels, necrotizing_biopsy, read_ck

SUBGROUPS = ("imnm", "dm", "ass", "ibm", "dystrophy")
NAMES = {
    "imnm": "immune-mediated necrotizing myopathy",
    "dm": "dermatomyositis",
    "ass": "antisynthetase syndrome",
    "ibm": "inclusion body myositis",
    "dystrophy": "muscular dystrophy",
}


@dataclass
class Evidence:
    """What supports and what speaks against one subgroup, with sources."""

    subgroup: str
    supports: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Differential:
    """Evidence per subgroup and the findings."""

    evidence: dict[str, Evidence]
    findings: tuple[Finding, ...]


def _matches(observed: object, expected: object) -> bool:
    if isinstance(expected, bool) or isinstance(observed, bool):
        return observed is expected
    return str(expected) in str(observed).split("_and_") or observed == expected


def evaluate(patient: Patient, knowledge: Knowledge) -> Differential:
    """Weigh the child's biopsy, antibodies, skin and genetics against each subgroup."""
    evidence = {s: Evidence(s) for s in SUBGROUPS}
    biopsy = patient.biopsy
    if biopsy is not None:
        for feature in knowledge.pathology:
            observed = getattr(biopsy, feature.field)
            if observed is None:
                continue
            target = evidence[feature.subgroup]
            target.sources.add(feature.source)
            value = str(observed.value if hasattr(observed, "value") else observed).lower()
            shown = (f"biopsy {knowledge.label('biopsy_feature', feature.field)} "
                     f"({ {'true': 'yes', 'false': 'no'}.get(value, value.replace('_', ' ')) })")
            absence = feature.expected in (False, "absent")
            if _matches(observed, feature.expected):
                if not absence:  # the absence of a feature is consistent, not support
                    target.supports.append(f"{shown}: {feature.says}")
            elif feature.specific:
                target.against.append(f"{shown}: pattern expects {feature.says}")
        if biopsy.conclusion is not None:
            by_conclusion = {"necrotizing_myopathy": "imnm", "dermatomyositis": "dm",
                             "antisynthetase": "ass", "inclusion_body_myositis": "ibm",
                             "dystrophic": "dystrophy"}
            subgroup = by_conclusion.get(biopsy.conclusion.value)
            if subgroup:
                evidence[subgroup].supports.append(
                    f"pathologist's conclusion: {biopsy.conclusion.value.replace('_', ' ')}")

    positive = [a for a, r in patient.antibodies.items() if r.status is AntibodyStatus.positive]
    for antibody in positive:
        profile = knowledge.antibodies[antibody]
        for subgroup in profile.points_to:
            if subgroup in evidence:
                evidence[subgroup].supports.append(
                    f"anti-{antibody.value} positive (a myositis-{profile.kind} antibody; "
                    f"this association is {profile.status.value} in imnm's sources)")
                evidence[subgroup].sources.add(profile.source)
        if "imnm" in profile.points_to:
            evidence["dystrophy"].against.append(
                f"anti-{antibody.value} positive: an IMNM antibody, not a feature of dystrophy")

    skin = patient.extramuscular.skin
    for name in ("heliotrope_rash", "gottron_papules", "gottron_sign"):
        if getattr(skin, name) is True:
            evidence["dm"].supports.append(f"{name.replace('_', ' ')} (EULAR/ACR 2017 item)")
            evidence["dm"].sources.add("eular_acr_2017")

    genetic = patient.genetic_testing
    if genetic.result is GeneticResult.diagnostic:
        evidence["dystrophy"].supports.append(
            f"diagnostic genetic result: {genetic.diagnosis or ', '.join(genetic.genes)}")
    elif genetic.result is GeneticResult.negative:
        evidence["dystrophy"].against.append("genetic testing negative (not excluded by it)")
    if patient.family_history.neuromuscular_disease is True:
        evidence["dystrophy"].supports.append("family history of neuromuscular disease")
    evidence["dystrophy"].sources.add("wang_liang_2023")

    findings: list[Finding] = []
    for subgroup in SUBGROUPS:
        ev = evidence[subgroup]
        if not ev.supports and not ev.against:
            continue
        parts = []
        if ev.supports:
            parts.append("for: " + "; ".join(ev.supports))
        if ev.against:
            parts.append("against: " + "; ".join(ev.against))
        findings.append(Finding(
            rule_id=f"differential.{subgroup}", kind=Kind.note,
            conclusion=f"{NAMES[subgroup].capitalize()}: " + " | ".join(parts) + ".",
            facts=tuple(Fact(field="for", value=s) for s in ev.supports)
            + tuple(Fact(field="against", value=s) for s in ev.against),
            source=sorted(ev.sources)[0] if ev.sources else "wang_liang_2023",
            status=Status.confirmed if "wang_liang_2023" in ev.sources else Status.unconfirmed,
        ))

    findings += _atypical(patient, knowledge, positive)
    if any(g.upper() == "HMGCR" for g in genetic.genes):
        findings.append(recommended(knowledge, "caution.hmgcr_gene_not_antibody",
                                    facts_used=facts(genes=genetic.genes)))
    labels = classify_labels(patient, knowledge)
    ck = read_ck(patient, knowledge)
    imnm_positive = any("imnm" in knowledge.antibodies[a].points_to for a in positive)
    if ck.elevated and not imnm_positive and any(lab.set == "dystrophy" for lab in labels):
        findings.append(recommended(knowledge, "caution.high_ck_not_specific",
                                    facts_used=facts(peak_ck=ck.describe())))
    return Differential(evidence, tuple(findings))


def _atypical(patient: Patient, knowledge: Knowledge, positive: list[Antibody]
              ) -> list[Finding]:
    necrotizing, why = necrotizing_biopsy(patient.biopsy)
    if necrotizing is not True:
        return []
    out = []
    for antibody in patient.antibodies:
        if antibody not in positive:
            continue
        profile = knowledge.antibodies[antibody]
        if profile.kind != "specific" or "imnm" in profile.points_to:
            continue
        out.append(recommended(
            knowledge, "differential.atypical_antibody",
            facts_used=facts(antibody=f"anti-{antibody.value} positive",
                             points_to=list(profile.points_to), biopsy=why),
            prefix=(f"Anti-{antibody.value} points to "
                    f"{', '.join(NAMES.get(s, s) for s in profile.points_to)} "
                    f"({profile.status}), but the biopsy shows necrotizing myopathy. "),
        ))
    return out
