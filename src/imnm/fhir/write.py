"""A :class:`~imnm.patient.Patient` as a FHIR R4 Bundle.

Standard codes where the knowledge base has them (ICD-10-CM / SNOMED CT Conditions; LOINC
Observations with UCUM units; RxNorm medications); imnm's own ``urn:imnm:*`` codes for what has
none, so a round trip loses nothing but free-text notes. Every reference is the fullUrl of the
resource it names (``urn:uuid:...``), so it resolves inside the Bundle.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from imnm.codes import URIS
from imnm.fhir.common import (
    ABSENT,
    ADMINISTRATIONS,
    ANTIBODY,
    ASSAY,
    BIOPSY,
    CLINICAL,
    DRUG,
    FACT,
    FACT_PARTS,
    GENETIC,
    INTERPRETATION,
    LOINC,
    RECORD_ID,
    RXNORM,
    SCORE,
    SCORES,
    STRENGTH,
    VERIFICATION,
    VISIT_TAG,
    _codes_for,
    _quantity,
    _validate_bundle,
    answer_coding,
)
from imnm.knowledge import Knowledge, load_knowledge
from imnm.patient import Patient


def _flatten(model: BaseModel, prefix: str) -> Iterator[tuple[str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}.{name}"
        if isinstance(value, BaseModel):
            yield from _flatten(value, path)
        elif isinstance(value, list):
            for item in value:
                yield path, item
        elif value is not None:
            yield path, value


def _fact_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueQuantity": {"value": value}}
    if isinstance(value, dt.date):
        return {"valueDateTime": value.isoformat()}
    return {"valueString": str(getattr(value, "value", value))}


def _full_url(resource: Mapping[str, Any]) -> str:
    name = f"{resource['resourceType']}/{resource['id']}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


LABORATORY = [{"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "laboratory"}]}]


def _interpretation_code(knowledge: Knowledge, answer: str) -> str:
    """The HL7 interpretation code results.toml reads as ``answer`` (POS / NEG first)."""
    codes = [i.code for i in knowledge.interpretations if i.answer == answer]
    return next((c for c in ("POS", "NEG") if c in codes), codes[0])


def to_bundle(patient: Patient, knowledge: Knowledge | None = None) -> dict[str, Any]:
    """The patient as a FHIR R4 collection Bundle (a dict, validated with fhir.resources)."""
    kb = knowledge or load_knowledge()
    pid = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in patient.id)[:64]
    # Every reference is the fullUrl of what it names, so it resolves inside the Bundle.
    subject = {"reference": _full_url({"resourceType": "Patient", "id": pid})}
    resources: list[dict[str, Any]] = []
    counter = iter(range(1, 100_000))

    def add(resource: dict[str, Any]) -> str:
        resource.setdefault("id", f"{pid}-{next(counter)}")
        resources.append(resource)
        return _full_url(resource)

    person: dict[str, Any] = {
        "resourceType": "Patient", "id": pid,
        "identifier": [{"system": RECORD_ID, "value": patient.id}],
        "gender": patient.sex.value}
    if patient.birth_date:
        person["birthDate"] = patient.birth_date.isoformat()
    resources.append(person)

    def observation(code: dict[str, Any], value: dict[str, Any], when: dt.date | None = None,
                    **extra: Any) -> dict[str, Any]:
        obs: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                               "code": {"coding": [code]}, "subject": subject, **value, **extra}
        if when is not None:
            obs["effectiveDateTime"] = when.isoformat()
        return obs

    if patient.age_years is not None and patient.birth_date is None:
        add(observation({"system": FACT, "code": "age_years"},
                        _fact_value(float(patient.age_years))))
    for name in ("weight", "height"):
        loinc = _codes_for(kb, "vital", name)[0]
        quantity = getattr(patient, name)
        if quantity is not None:
            add(observation({"system": LOINC, "code": loinc}, {"valueQuantity": _quantity(
                quantity.value, quantity.unit)}, category=[{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs"}]}]))

    for diagnosis in patient.diagnoses:
        condition: dict[str, Any] = {
            "resourceType": "Condition", "subject": subject, "code": {"text": diagnosis.label},
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": (
                "resolved" if diagnosis.status.value == "resolved" else "active")}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": (
                "refuted" if diagnosis.status.value == "refuted" else "confirmed")}]}}
        if diagnosis.system and diagnosis.code:
            condition["code"]["coding"] = [{"system": URIS[diagnosis.system],
                                            "code": diagnosis.code}]
        if diagnosis.date:
            condition["onsetDateTime"] = diagnosis.date.isoformat()
        add(condition)

    def enzyme(result: Any, loinc: str, visit: bool = False) -> None:
        value: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if result.value is not None:
            value["valueQuantity"] = _quantity(result.value, result.unit)
        else:
            value["dataAbsentReason"] = {"coding": [{"system": ABSENT, "code": "not-applicable"}]}
        if result.upper_limit is not None:
            extra["referenceRange"] = [{"high": _quantity(result.upper_limit, result.unit)}]
        if result.interpretation is not None:
            extra["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": (
                "H" if result.interpretation.value == "elevated" else "N")}]}]
        if visit:
            extra["meta"] = {"tag": [{"system": VISIT_TAG, "code": "visit"}]}
        if result.lab:
            extra["performer"] = [{"display": result.lab}]
        add(observation({"system": LOINC, "code": loinc}, value, result.date,
                        category=LABORATORY, **extra))

    ck_loinc = _codes_for(kb, "ck", "ck")[0]
    for result in patient.ck:
        enzyme(result, ck_loinc)
    for other in patient.other_enzymes:
        enzyme(other, _codes_for(kb, "enzyme", other.analyte)[0])

    for antibody, ab_result in patient.antibodies.items():
        loincs = _codes_for(kb, "antibody_test", antibody.value)
        ab_code = ({"system": LOINC, "code": loincs[0]} if loincs
                   else {"system": ANTIBODY, "code": antibody.value})
        ab_code["display"] = f"anti-{antibody.value} antibody"
        status = ab_result.status.value
        entry = kb.lookup_code("loinc", loincs[0]) if loincs else None
        quantitative = entry is not None and entry.scale == "Qn"
        ab_extra: dict[str, Any] = {"category": LABORATORY}
        interpretations: list[dict[str, Any]] = []
        ab_value: dict[str, Any] = {}
        if status == "not_tested":
            ab_value = {"dataAbsentReason": {"coding": [{"system": ABSENT,
                                                         "code": "not-performed"}]}}
        elif quantitative:
            # A units-scale test carries a number; imnm keeps only the laboratory's reading of
            # it, so it writes that reading as the interpretation code and no value.
            interpretations.append({"coding": [{"system": INTERPRETATION,
                                                "code": _interpretation_code(kb, status)}]})
        else:
            ab_value = {"valueCodeableConcept": {"coding": [answer_coding(kb, status)]}}
        if ab_result.method is not None:
            ab_extra["method"] = {"coding": [{"system": ASSAY, "code": ab_result.method.value}]}
        if ab_result.strength is not None:
            interpretations.append({"coding": [{"system": STRENGTH,
                                                "code": ab_result.strength}]})
        if interpretations:
            ab_extra["interpretation"] = interpretations
        add(observation(ab_code, ab_value, ab_result.date, **ab_extra))

    genetic = patient.genetic_testing
    if genetic.done is not None or genetic.result is not None or genetic.genes:
        concept: dict[str, Any] = {}
        if genetic.result is not None:
            concept = {"coding": [{"system": GENETIC, "code": genetic.result.value}]}
            if genetic.diagnosis:
                concept["text"] = genetic.diagnosis
        gen_value: dict[str, Any] = (
            {"valueCodeableConcept": concept} if concept else
            {"dataAbsentReason": {"coding": [{"system": ABSENT, "code": (
                "not-performed" if genetic.done is False else "unknown")}]}})
        components = [{"code": {"coding": [{"system": FACT, "code": "genetic_testing.genes"}]},
                       "valueString": gene} for gene in genetic.genes]
        gen_extra: dict[str, Any] = {"component": components} if components else {}
        add(observation({"system": LOINC, "code": kb.codes_in("genetic_test")[0].code},
                        gen_value, category=LABORATORY, **gen_extra))

    for part in FACT_PARTS:
        section = getattr(patient, part)
        if section is None:
            continue
        for path, value in _flatten(section, part):
            add(observation({"system": FACT, "code": path}, _fact_value(value)))
    if patient.family_history.neuromuscular_disease is True:
        history: dict[str, Any] = {
            "resourceType": "FamilyMemberHistory", "status": "completed", "patient": subject,
            "relationship": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                "code": "FAMMEMB"}]},
            "condition": [{"code": {"coding": [{"system": FACT,
                                                "code": "neuromuscular_disease"}],
                                    "text": "neuromuscular disease"}}]}
        if patient.family_history.details:
            history["condition"][0]["note"] = [{"text": patient.family_history.details}]
        add(history)
    elif patient.family_history.neuromuscular_disease is False:
        add(observation({"system": FACT, "code": "family_history.neuromuscular_disease"},
                        {"valueBoolean": False}))

    if patient.biopsy is not None:
        biopsy = patient.biopsy
        procedure = {"resourceType": "Procedure", "status": "completed", "subject": subject,
                     "code": {"coding": [{"system": BIOPSY, "code": "muscle-biopsy"}],
                              "text": "Muscle biopsy"}}
        if biopsy.date:
            procedure["performedDateTime"] = biopsy.date.isoformat()
        procedure_ref = add(procedure)
        results = [add(observation({"system": FACT, "code": f"biopsy.{path.split('.', 1)[1]}"},
                                   _fact_value(value)))
                   for path, value in _flatten(biopsy, "biopsy")
                   if path not in ("biopsy.date", "biopsy.conclusion")]
        report: dict[str, Any] = {
            "resourceType": "DiagnosticReport", "status": "final", "subject": subject,
            "code": {"coding": [{"system": BIOPSY, "code": "muscle-biopsy-report"}],
                     "text": "Muscle biopsy report"},
            "result": [{"reference": r} for r in results]}
        report["extension"] = [{"url": "urn:imnm:procedure", "valueReference": {
            "reference": procedure_ref}}]
        if biopsy.conclusion is not None:
            report["conclusionCode"] = [{"coding": [{"system": BIOPSY,
                                                     "code": biopsy.conclusion.value}]}]
        if biopsy.date:
            report["effectiveDateTime"] = biopsy.date.isoformat()
        add(report)

    for treatment in patient.treatments:
        rx = _codes_for(kb, "drug", treatment.drug.value)
        med: dict[str, Any] = {"coding": [{"system": RXNORM, "code": rx[0]}] if rx else
                               [{"system": DRUG, "code": treatment.drug.value}],
                               "text": treatment.name or treatment.drug.value}
        if rx:
            med["coding"].append({"system": DRUG, "code": treatment.drug.value})
        statement: dict[str, Any] = {
            "resourceType": "MedicationStatement", "subject": subject,
            "status": "completed" if treatment.end else "active",
            "medicationCodeableConcept": med}
        if treatment.start or treatment.end:
            statement["effectivePeriod"] = {
                k: v.isoformat() for k, v in (("start", treatment.start), ("end", treatment.end))
                if v}
        dosage: dict[str, Any] = {}
        if treatment.dose:
            dosage["doseAndRate"] = [{"doseQuantity": {"value": treatment.dose.value,
                                                       "unit": treatment.dose.unit}}]
        if treatment.route:
            dosage["route"] = {"text": treatment.route}
        if treatment.frequency:
            dosage["timing"] = {"code": {"text": treatment.frequency}}
        if dosage:
            statement["dosage"] = [dosage]
        if treatment.administrations is not None:
            statement["extension"] = [{"url": ADMINISTRATIONS,
                                       "valueInteger": treatment.administrations}]
        add(statement)

    for visit in patient.visits:
        for name in SCORES:
            value = getattr(visit, name)
            if value is not None:
                add(observation({"system": SCORE, "code": name},
                                _fact_value(value if isinstance(value, int) else float(value)),
                                visit.date))
        if visit.ck is not None:
            enzyme(visit.ck.model_copy(update={"date": visit.date}), ck_loinc, visit=True)

    bundle = {"resourceType": "Bundle", "type": "collection",
              "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:imnm:{patient.id}")),
              "timestamp": f"{patient.reference_date().isoformat()}T00:00:00Z",
              "entry": [{"fullUrl": _full_url(r), "resource": r} for r in resources]}
    _validate_bundle(bundle)
    return bundle


