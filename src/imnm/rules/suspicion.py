"""Suspicion: the seed review's central warning.

``suspicion.dystrophy_label_unconfirmed``
    A child with a muscular-dystrophy or unexplained-myopathy label, elevated CK and proximal
    weakness, without genetic confirmation or a family history, not yet tested for anti-HMGCR
    and anti-SRP, should be tested.
``suspicion.antibody_positive_with_dystrophy_label``
    A positive anti-HMGCR or anti-SRP in a child still labelled as a dystrophy.
``suspicion.undetermined``
    The warning could not be decided; the finding names the missing facts.

Parameters (``parameters.toml``, both heuristic): ``suspicion_min_ck_multiple_of_uln`` and
``suspicion_require_proximal_weakness``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from imnm.findings import Finding, Kind, facts, recommended
from imnm.knowledge import Knowledge, Status
from imnm.patient import Antibody, AntibodyStatus, Patient
from imnm.rules._facts import antibody_status, classify_labels, read_ck

_LABEL_SETS = ("dystrophy", "unexplained_myopathy")


@dataclass(frozen=True)
class Suspicion:
    """The answer to 'should this child be tested for anti-HMGCR and anti-SRP now?'."""

    test_for_imnm_antibodies: bool
    review_dystrophy_label: bool
    undetermined: tuple[str, ...]
    findings: tuple[Finding, ...]


def evaluate(patient: Patient, knowledge: Knowledge,
             parameters: Mapping[str, float | bool]) -> Suspicion:
    """Apply the suspicion rules to one child."""
    labels = [lab for lab in classify_labels(patient, knowledge) if lab.set in _LABEL_SETS]
    dystrophy_labels = [lab for lab in labels if lab.set == "dystrophy"]
    hmgcr, srp = patient.antibody(Antibody.HMGCR), patient.antibody(Antibody.SRP)
    findings: list[Finding] = []

    positive = [a for a, s in ((Antibody.HMGCR, hmgcr), (Antibody.SRP, srp))
                if s is AntibodyStatus.positive]
    review = bool(positive and dystrophy_labels)
    if review:
        findings.append(recommended(
            knowledge, "suspicion.antibody_positive_with_dystrophy_label",
            facts_used=facts(
                labels=[lab.text() for lab in dystrophy_labels],
                positive_antibodies=[f"anti-{a.value}" for a in positive],
                genetic_result=(patient.genetic_testing.result.value
                                if patient.genetic_testing.result else None),
            ),
        ))

    untested = [a for a, s in ((Antibody.HMGCR, hmgcr), (Antibody.SRP, srp))
                if s not in (AntibodyStatus.positive, AntibodyStatus.negative)]
    if not labels or not untested or positive:
        # Nothing to warn about, both antibodies resulted, or one is already positive (the
        # label review above is then the finding that matters).
        return Suspicion(False, review, (), tuple(findings))

    ck = read_ck(patient, knowledge)
    min_multiple = float(parameters["suspicion_min_ck_multiple_of_uln"])
    need_weakness = bool(parameters["suspicion_require_proximal_weakness"])
    weak = patient.weakness.has_proximal_weakness()
    genetic_confirmed = patient.genetic_testing.confirmed
    family = patient.family_history.neuromuscular_disease

    ck_high: bool | None
    peak = ck.peak
    if peak is not None and peak.multiple is not None and peak.bound_only:
        # Compared with the highest fallback limit only: above it is high; below, unknown.
        ck_high = True if peak.multiple > min_multiple else None
    elif peak is not None and peak.multiple is not None:
        ck_high = peak.multiple > min_multiple
    elif peak is not None and peak.elevated is not None and min_multiple <= 1.0:
        ck_high = peak.elevated  # a laboratory flag suffices only at the default threshold
    else:
        ck_high = None

    used = facts(
        labels=[lab.text() for lab in labels],
        peak_ck=ck.describe(),
        proximal_weakness=weak,
        genetic_testing=(patient.genetic_testing.result.value
                         if patient.genetic_testing.result else
                         ("not done" if patient.genetic_testing.done is False else "not reported")),
        family_history_neuromuscular=family,
        anti_HMGCR=antibody_status(patient, Antibody.HMGCR),
        anti_SRP=antibody_status(patient, Antibody.SRP),
        min_ck_multiple=min_multiple if min_multiple != 1.0 else None,
    )

    # Anything that rules the warning out, decided on known facts only.
    excluded_by = []
    if genetic_confirmed:
        excluded_by.append("a diagnostic genetic result")
    if family is True:
        excluded_by.append("a family history of neuromuscular disease")
    if ck_high is False:
        excluded_by.append("CK not above the threshold")
    if need_weakness and weak is False:
        excluded_by.append("no proximal weakness on examination")
    if excluded_by:
        return Suspicion(False, review, (), tuple(findings))

    unknown = []
    if ck_high is None:
        unknown.append("a CK value with its upper reference limit"
                       if ck.readings else "a CK result")
    if need_weakness and weak is None:
        unknown.append("proximal muscle strength (MRC grades)")
    if unknown:
        findings.append(Finding(
            rule_id="suspicion.undetermined",
            kind=Kind.gap,
            conclusion="Cannot yet say whether this child should be tested for anti-HMGCR and "
            "anti-SRP: the label fits the warning but " + " and ".join(unknown)
            + (" is" if len(unknown) == 1 else " are") + " missing.",
            facts=used,
            source=knowledge.recommendation("suspicion.dystrophy_label_unconfirmed").source,
            status=Status.confirmed,
            missing=tuple(unknown),
        ))
        return Suspicion(False, review, tuple(unknown), tuple(findings))

    soft = []
    if patient.genetic_testing.result is None and patient.genetic_testing.done is not False:
        soft.append("genetic testing result")
    if family is None:
        soft.append("family history of neuromuscular disease")
    which = " and ".join(f"anti-{a.value}" for a in untested)
    note = "" if need_weakness else "(Proximal weakness was not required: parameter) "
    findings.append(recommended(
        knowledge, "suspicion.dystrophy_label_unconfirmed",
        facts_used=used,
        missing=tuple(soft),
        prefix=f"Not yet tested: {which}. {note}",
    ))
    return Suspicion(True, review, (), tuple(findings))
