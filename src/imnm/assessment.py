"""Run every rule on one child and return one :class:`Assessment`.

The JSON form (``Assessment.to_json()``) is a stable, documented shape (docs/assessment-json.md,
schema id ``imnm.assessment/1``): new keys may be added, existing keys keep their meaning.
"""

# No ``from __future__ import annotations``: pydantic would evaluate every field's annotation
# from its string (an eval and a compile each) as it builds the models, on every start.

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imnm import __version__
from imnm.findings import Finding
from imnm.knowledge import Knowledge, Status, load_knowledge
from imnm.patient import Antibody, Patient, load_patient
from imnm.rules import classification, differential, suspicion, workup
from imnm.rules._facts import antibody_status, classify_labels, read_ck

SCHEMA_ID = "imnm.assessment/1"
ASSESSMENT_PARAMETERS = ("suspicion_",)  # the parameters the assessment's rules read


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SuspicionOut(_Out):
    """Should this child be tested for anti-HMGCR and anti-SRP now?"""

    test_for_imnm_antibodies: bool
    review_dystrophy_label: bool
    undetermined: tuple[str, ...] = Field(description="Missing facts that kept it undecided.")


class EnmcOut(_Out):
    """ENMC 2017 class."""

    cls: Literal["anti_hmgcr_imnm", "anti_srp_imnm", "seronegative_imnm", "not_imnm",
                 "insufficient_data"] = Field(alias="class")
    missing: tuple[str, ...]
    caveats: tuple[str, ...]
    elements: dict[str, bool | None]
    reasons: tuple[str, ...]
    source: str
    status: Status


class EularOut(_Out):
    """2017 EULAR/ACR score."""

    with_biopsy: bool
    score: float
    max_score_if_unknown_present: float
    category: str
    category_if_unknown_present: str
    probability: float
    probability_is_approximate: bool = True
    subgroup: str | None
    juvenile_onset: bool | None
    items: dict[str, bool | None]
    unknown_items: tuple[str, ...]
    unknown_why: dict[str, str] = {}
    note: str
    source: str = "eular_acr_2017"


class ClassificationOut(_Out):
    """Both classifications."""

    enmc_2017: EnmcOut
    eular_acr_2017: EularOut


class EvidenceOut(_Out):
    """What supports and what speaks against one subgroup."""

    supports: tuple[str, ...]
    against: tuple[str, ...]


class Summary(_Out):
    """Key facts of the child at a glance."""

    sex: str
    age_years: float | None
    onset_age_years: float | None
    onset_pattern: str | None
    onset_pattern_from: Literal["dates", "stated"] | None
    peak_ck: str
    ck_elevated: bool | None
    proximal_weakness: bool | None
    anti_hmgcr: str
    anti_srp: str
    other_positive_antibodies: tuple[str, ...]
    diagnosis_labels: tuple[str, ...]
    unrecognised_codes: tuple[str, ...]


class Assessment(_Out):
    """The explained assessment of one child."""

    schema_id: str = Field(SCHEMA_ID, alias="schema")
    imnm_version: str = __version__
    patient_id: str
    as_of: str
    summary: Summary
    suspicion: SuspicionOut
    classification: ClassificationOut
    differential: dict[str, EvidenceOut]
    findings: tuple[Finding, ...]
    parameters: dict[str, float | bool]
    sources: dict[str, str] = Field(description="Citation of every source id used above.")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dictionary (aliases such as ``class`` applied)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, indent: int | None = 2) -> str:
        """The assessment as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _summary(patient: Patient, knowledge: Knowledge) -> Summary:
    ck = read_ck(patient, knowledge)
    labels = classify_labels(patient, knowledge)
    age, onset = patient.age_years_now(), patient.onset_age_years()
    derived = patient.onset.derived_pattern()
    pattern = patient.onset.effective_pattern()
    others = tuple(
        f"anti-{a.value}" for a, r in patient.antibodies.items()
        if r.status.value == "positive" and a not in (Antibody.HMGCR, Antibody.SRP)
    )
    return Summary(
        sex=patient.sex.value,
        age_years=None if age is None else round(age, 1),
        onset_age_years=None if onset is None else round(onset, 1),
        onset_pattern=pattern.value if pattern else None,
        onset_pattern_from=("dates" if derived else "stated") if pattern else None,
        peak_ck=ck.describe(),
        ck_elevated=ck.elevated,
        proximal_weakness=patient.weakness.has_proximal_weakness(),
        anti_hmgcr=antibody_status(patient, Antibody.HMGCR),
        anti_srp=antibody_status(patient, Antibody.SRP),
        other_positive_antibodies=others,
        diagnosis_labels=tuple(lab.text() for lab in labels),
        unrecognised_codes=tuple(lab.text() for lab in labels if lab.via == "unrecognised code"),
    )


def _parameters(kb: Knowledge, parameters: Mapping[str, float | bool] | None
                ) -> dict[str, float | bool]:
    params: dict[str, float | bool] = {k: p.value for k, p in kb.parameters.items()}
    for key, value in (parameters or {}).items():
        if key not in params:
            raise KeyError(f"unknown parameter {key!r}; known: {', '.join(sorted(params))}")
        params[key] = value
    return params


def _suspicion_out(sus: suspicion.Suspicion) -> SuspicionOut:
    return SuspicionOut(test_for_imnm_antibodies=sus.test_for_imnm_antibodies,
                        review_dystrophy_label=sus.review_dystrophy_label,
                        undetermined=sus.undetermined)


@dataclass(frozen=True)
class Triage:
    """What a CDS Hooks card says of one child, by the same rules as :func:`assess`: the
    suspicion, the ENMC 2017 class, and the findings of both and of the work-up (where the
    red flags are). The EULAR/ACR score, the differential and the summary, which no card
    shows, are left out; the card's link opens the full assessment."""

    suspicion: SuspicionOut
    enmc_class: str
    enmc_source: str
    findings: tuple[Finding, ...]


def triage(patient: Patient, *, knowledge: Knowledge | None = None,
           parameters: Mapping[str, float | bool] | None = None) -> Triage:
    """The part of :func:`assess` a CDS Hooks card says (:class:`Triage`)."""
    kb = knowledge or load_knowledge()
    sus = suspicion.evaluate(patient, kb, _parameters(kb, parameters))
    enmc, enmc_finding = classification.evaluate_enmc(patient, kb)
    return Triage(suspicion=_suspicion_out(sus), enmc_class=enmc.cls, enmc_source=enmc.source,
                  findings=(*sus.findings, enmc_finding, *workup.evaluate(patient, kb,
                                                                          enmc.cls)))


def assess(
    patient: Patient | Mapping[str, Any] | str,
    *,
    knowledge: Knowledge | None = None,
    parameters: Mapping[str, float | bool] | None = None,
) -> Assessment:
    """Assess one child: suspicion, classification, differential, work-up and red flags.

    ``patient`` may be a :class:`Patient`, a mapping or JSON text (validated first; an
    :class:`imnm.errors.InputError` lists every problem). ``parameters`` overrides named
    heuristic parameters from ``parameters.toml``.
    """
    if not isinstance(patient, Patient):
        patient = load_patient(patient)
    kb = knowledge or load_knowledge()
    params = _parameters(kb, parameters)

    sus = suspicion.evaluate(patient, kb, params)
    cls = classification.evaluate(patient, kb)
    diff = differential.evaluate(patient, kb)
    todo = workup.evaluate(patient, kb, cls.enmc.cls)
    findings = (*sus.findings, *cls.findings, *diff.findings, *todo)

    enmc, eular = cls.enmc, cls.eular
    used_sources = sorted({f.source for f in findings} | {enmc.source, "eular_acr_2017"})
    return Assessment(
        patient_id=patient.id,
        as_of=patient.reference_date().isoformat(),
        summary=_summary(patient, kb),
        suspicion=_suspicion_out(sus),
        classification=ClassificationOut(
            enmc_2017=EnmcOut.model_validate(dict(
                cls=enmc.cls, missing=enmc.missing, caveats=enmc.caveats,
                elements=enmc.elements, reasons=enmc.reasons, source=enmc.source,
                status=enmc.status)),
            eular_acr_2017=EularOut(
                with_biopsy=eular.with_biopsy, score=eular.score,
                max_score_if_unknown_present=eular.max_score_if_unknown_present,
                category=eular.category,
                category_if_unknown_present=eular.category_if_unknown_present,
                probability=round(eular.probability, 3), subgroup=eular.subgroup,
                juvenile_onset=eular.juvenile, items=eular.items,
                unknown_items=eular.unknown_items, unknown_why=eular.unknown_why,
                note=eular.note),
        ),
        differential={
            s: EvidenceOut(supports=tuple(e.supports), against=tuple(e.against))
            for s, e in diff.evidence.items()
        },
        findings=findings,
        parameters={k: v for k, v in params.items() if k.startswith(ASSESSMENT_PARAMETERS)},
        sources={s: kb.sources[s].citation for s in used_sources},
    )
