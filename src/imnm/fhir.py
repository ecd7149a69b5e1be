"""FHIR R4 in and out: a Bundle to a :class:`~imnm.patient.Patient` and back.

Resources are checked with fhir.resources' R4B models (R4B is R4 for these resources).
Standard codes are used where the knowledge base has them: ICD-10-CM and SNOMED CT for
Conditions; LOINC for CK, the other muscle enzymes, anti-HMGCR, anti-SRP, genetic testing,
weight and height (with UCUM units); RxNorm for treatments. What has no standard code in the
knowledge base is written with imnm's own code systems (``urn:imnm:*``) so that nothing is
lost on a round trip. On import, every resource or code imnm cannot use is listed in the
:class:`ImportReport`, never dropped in silence. Free-text notes are never exported.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from imnm.codes import URIS, CodeSystem
from imnm.errors import InputError, Problem, shorten
from imnm.knowledge import Knowledge, load_knowledge
from imnm.patient import (
    Drug,
    Patient,
    load_patient,
    parse_antibody,
)

LOINC, SNOMED, ICD10CM, RXNORM = (URIS[CodeSystem.loinc], URIS[CodeSystem.snomedct],
                                  URIS[CodeSystem.icd10cm], URIS[CodeSystem.rxnorm])
UCUM = "http://unitsofmeasure.org"
FACT, ANTIBODY, DRUG, SCORE = "urn:imnm:fact", "urn:imnm:antibody", "urn:imnm:drug", \
    "urn:imnm:score"
ASSAY, STRENGTH, GENETIC, BIOPSY = "urn:imnm:assay", "urn:imnm:strength", \
    "urn:imnm:genetic-result", "urn:imnm:biopsy"
RECORD_ID, VISIT_TAG, ADMINISTRATIONS = "urn:imnm:record-id", "urn:imnm:visit", \
    "urn:imnm:administrations"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
UCUM_UNITS = {"U/L": "U/L", "IU/L": "[IU]/L", "µkat/L": "ukat/L", "ukat/L": "ukat/L",
              "kg": "kg", "g": "g", "lb": "[lb_av]", "cm": "cm", "m": "m", "in": "[in_i]"}
FROM_UCUM = {v: k for k, v in UCUM_UNITS.items()} | {"U/L": "U/L", "ukat/L": "µkat/L"}
SCORES = ("mmt8", "cmas", "mrc_proximal", "mrs", "chaq", "physician_global", "patient_global",
          "extramuscular_global")
# Nested parts of the patient model written as imnm fact Observations, field by field.
FACT_PARTS = ("onset", "weakness", "mri", "extramuscular", "exposures", "preceding_infection")


@dataclass
class ImportReport:
    """What the import used and what it could not use."""

    resources_read: int = 0
    ignored: list[str] = field(default_factory=list)
    unrecognised_codes: list[str] = field(default_factory=list)


def _coding(codeable: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not codeable:
        return []
    return list(codeable.get("coding") or [])


def _first(codeable: Mapping[str, Any] | None, system: str) -> str | None:
    return next((c.get("code") for c in _coding(codeable) if c.get("system") == system), None)


def _date(value: object) -> str | None:
    return str(value)[:10] if value else None


def _ref(resource: Mapping[str, Any], key: str = "subject") -> str | None:
    reference = (resource.get(key) or {}).get("reference")
    return str(reference) if reference else None


# --------------------------------------------------------------------------- export


def _loinc_index(knowledge: Knowledge) -> dict[str, tuple[str, str | None]]:
    """LOINC code -> (code set, concept)."""
    return {c.code: (c.set, c.concept) for c in knowledge.codes if c.system is CodeSystem.loinc}


def _codes_for(knowledge: Knowledge, set_name: str, concept: str) -> list[str]:
    return [c.code for c in knowledge.codes_in(set_name, concept)]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": UCUM_UNITS.get(unit, unit)}


def answer_coding(knowledge: Knowledge, answer: str) -> dict[str, str]:
    """The SNOMED CT coding of a 'positive' or 'negative' laboratory answer."""
    entry = knowledge.codes_in("answer", answer)[0]
    return {"system": SNOMED, "code": entry.code, "display": entry.display}


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


def to_bundle(patient: Patient, knowledge: Knowledge | None = None) -> dict[str, Any]:
    """The patient as a FHIR R4 collection Bundle (a dict, validated with fhir.resources)."""
    kb = knowledge or load_knowledge()
    pid = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in patient.id)[:64]
    subject = {"reference": f"Patient/{pid}"}
    resources: list[dict[str, Any]] = []
    counter = iter(range(1, 100_000))

    def add(resource: dict[str, Any]) -> str:
        resource.setdefault("id", f"{pid}-{next(counter)}")
        resources.append(resource)
        return f"{resource['resourceType']}/{resource['id']}"

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
        add(observation({"system": LOINC, "code": loinc}, value, result.date, **extra))

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
        ab_value: dict[str, Any] = (
            {"valueCodeableConcept": {"coding": [answer_coding(kb, status)]}}
            if status != "not_tested" else
            {"dataAbsentReason": {"coding": [{"system": ABSENT, "code": "not-performed"}]}})
        ab_extra: dict[str, Any] = {}
        if ab_result.method is not None:
            ab_extra["method"] = {"coding": [{"system": ASSAY, "code": ab_result.method.value}]}
        if ab_result.strength is not None:
            ab_extra["interpretation"] = [{"coding": [{"system": STRENGTH,
                                                       "code": ab_result.strength}]}]
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
                        gen_value, **gen_extra))

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


# --------------------------------------------------------------------------- import


def _validate_bundle(bundle: Mapping[str, Any]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:20]:
            where = ".".join(str(p) for p in err["loc"]) or "(bundle)"
            problems.append(Problem(f"bundle.{where}", shorten(err.get("input")),
                                    str(err["msg"])))
        raise InputError(problems) from None


def is_bundle(data: object) -> bool:
    """True for a JSON object that is a FHIR Bundle."""
    return isinstance(data, Mapping) and data.get("resourceType") == "Bundle"


def resources_of(bundle: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource in a Bundle (nested searchset Bundles flattened)."""
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource")
        if not isinstance(resource, Mapping):
            continue
        if resource.get("resourceType") == "Bundle":
            yield from resources_of(resource)
        else:
            yield dict(resource)


def _set_path(target: dict[str, Any], path: str, value: Any, as_list: bool) -> None:
    parts = path.split(".")
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if as_list:
        node.setdefault(parts[-1], []).append(value)
    else:
        node[parts[-1]] = value


_LIST_FACTS = {"mri.oedema_regions", "mri.fatty_replacement_regions",
               "extramuscular.skin.other"}


def _value(resource: Mapping[str, Any]) -> Any:
    for key in ("valueBoolean", "valueInteger", "valueString", "valueDateTime"):
        if key in resource:
            value = resource[key]
            return value[:10] if key == "valueDateTime" else value
    if "valueQuantity" in resource:
        return (resource["valueQuantity"] or {}).get("value")
    return None


def from_bundle(bundle: Mapping[str, Any], knowledge: Knowledge | None = None,
                *, as_of: dt.date | None = None) -> tuple[Patient, ImportReport]:
    """Read a FHIR R4 Bundle about one child. Raises InputError when it cannot be used."""
    kb = knowledge or load_knowledge()
    _validate_bundle(bundle)
    report = ImportReport()
    loinc = _loinc_index(kb)
    snomed_ok = {(c.system, c.code) for c in kb.codes}
    rx_index = {c.code: c.concept for c in kb.codes_in("drug")}
    resources = list(resources_of(bundle))
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise InputError([Problem("bundle.entry", f"{len(patients)} Patient resources",
                                  "exactly one Patient resource")])
    person = patients[0]
    record_id = next((i.get("value") for i in person.get("identifier") or []
                      if i.get("system") == RECORD_ID), None) or person.get("id") or "patient"
    when = as_of or (dt.date.fromisoformat(str(bundle["timestamp"])[:10])
                     if bundle.get("timestamp") else None)
    data: dict[str, Any] = {"id": record_id, "sex": person.get("gender") or "unknown"}
    if when is not None:
        data["as_of"] = when.isoformat()
    if person.get("birthDate"):
        data["birth_date"] = str(person["birthDate"])[:10]
    ck: list[dict[str, Any]] = []
    visits: dict[str, dict[str, Any]] = {}
    by_ref: dict[str, dict[str, Any]] = {}
    for resource in resources:
        if resource.get("id"):
            by_ref[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    biopsy_results: set[str] = set()
    for resource in resources:
        if resource.get("resourceType") == "DiagnosticReport":
            biopsy_results |= {r.get("reference") for r in resource.get("result") or []}

    for resource in resources:
        kind = resource.get("resourceType")
        report.resources_read += 1
        label = f"{kind}/{resource.get('id', '?')}"
        if kind == "Patient":
            continue
        if kind == "Condition":
            _condition(resource, data, snomed_ok, report, label)
        elif kind == "Observation":
            _observation(resource, data, ck, visits, loinc, report, label)
        elif kind in ("MedicationStatement", "MedicationRequest", "MedicationAdministration"):
            _medication(resource, data, rx_index, report, label)
        elif kind == "FamilyMemberHistory":
            family = data.setdefault("family_history", {})
            family["neuromuscular_disease"] = True
            notes = [n.get("text") for c in resource.get("condition") or []
                     for n in c.get("note") or [] if n.get("text")]
            if notes:
                family["details"] = "; ".join(notes)
        elif kind == "Procedure":
            if _first(resource.get("code"), BIOPSY) == "muscle-biopsy" or "biopsy" in str(
                    (resource.get("code") or {}).get("text", "")).lower():
                biopsy = data.setdefault("biopsy", {})
                if resource.get("performedDateTime"):
                    biopsy["date"] = _date(resource["performedDateTime"])
            else:
                report.ignored.append(f"{label}: not a muscle biopsy")
        elif kind == "DiagnosticReport":
            conclusion = next((_first(c, BIOPSY) for c in resource.get("conclusionCode") or []
                               if _first(c, BIOPSY)), None)
            if _first(resource.get("code"), BIOPSY) or conclusion:
                biopsy = data.setdefault("biopsy", {})
                if conclusion:
                    biopsy["conclusion"] = conclusion
                if resource.get("effectiveDateTime"):
                    biopsy.setdefault("date", _date(resource["effectiveDateTime"]))
            else:
                report.ignored.append(f"{label}: not a muscle biopsy report")
        else:
            report.ignored.append(f"{label}: resource type not used by imnm")
    if ck:
        data["ck"] = ck
    if visits:
        data["visits"] = [visits[k] for k in sorted(visits)]
    try:
        return load_patient(data), report
    except InputError as exc:
        raise InputError(exc.problems, record_id=record_id) from None


def _condition(resource: dict[str, Any], data: dict[str, Any], known: set[Any],
               report: ImportReport, label: str) -> None:
    verification = _first(resource.get("verificationStatus"), VERIFICATION)
    if verification == "entered-in-error":
        report.ignored.append(f"{label}: entered in error")
        return
    clinical = _first(resource.get("clinicalStatus"), CLINICAL)
    status = ("refuted" if verification == "refuted" else
              "resolved" if clinical in ("resolved", "inactive", "remission") else "active")
    code = resource.get("code") or {}
    text = code.get("text") or next((c.get("display") for c in _coding(code)
                                     if c.get("display")), None)
    entry: dict[str, Any] = {"label": text or "(no text)", "status": status}
    for coding in _coding(code):
        system = {ICD10CM: "icd10cm", SNOMED: "snomedct"}.get(coding.get("system", ""))
        if system and coding.get("code"):
            entry |= {"system": system, "code": coding["code"]}
            if (CodeSystem(system), coding["code"]) not in known:
                report.unrecognised_codes.append(f"{label}: {system} {coding['code']} is in "
                                                 "no imnm code set (kept as a label)")
            break
    else:
        systems = ", ".join(sorted({str(c.get("system")) for c in _coding(code)})) or "none"
        report.unrecognised_codes.append(f"{label}: no ICD-10-CM or SNOMED CT code (systems: "
                                         f"{systems}); kept by its text")
    if text is None and "code" in entry:
        entry["label"] = f"{entry['system']} {entry['code']}"
    if resource.get("onsetDateTime"):
        entry["date"] = _date(resource["onsetDateTime"])
    data.setdefault("diagnoses", []).append(entry)


def _antibody_name(resource: Mapping[str, Any], loinc: dict[str, tuple[str, str | None]]
                   ) -> str | None:
    code = resource.get("code") or {}
    own = _first(code, ANTIBODY)
    if own:
        return own
    for coding in _coding(code):
        if coding.get("system") == LOINC and loinc.get(coding.get("code", ""), ("", None))[0] \
                == "antibody_test":
            return loinc[coding["code"]][1]
    text = str(code.get("text") or next((c.get("display") for c in _coding(code)
                                         if c.get("display")), "") or "")
    words = [w for w in text.replace("-", " ").split() if w.lower() not in (
        "antibody", "antibodies", "ab", "igg", "serum", "in", "level", "anti")]
    try:
        return parse_antibody("".join(words)).value if words else None
    except ValueError:
        return None


def _observation(resource: dict[str, Any], data: dict[str, Any], ck: list[dict[str, Any]],
                 visits: dict[str, dict[str, Any]], loinc: dict[str, tuple[str, str | None]],
                 report: ImportReport, label: str) -> None:
    if resource.get("status") in ("entered-in-error", "cancelled"):
        report.ignored.append(f"{label}: status {resource.get('status')}")
        return
    code = resource.get("code") or {}
    when = _date(resource.get("effectiveDateTime"))
    fact = _first(code, FACT)
    if fact is not None:
        value = _value(resource)
        if fact == "age_years":
            data["age_years"] = value
        elif fact == "family_history.neuromuscular_disease":
            data.setdefault("family_history", {})["neuromuscular_disease"] = value
        elif fact.startswith("biopsy."):
            _set_path(data, fact, value, as_list=False)
        else:
            _set_path(data, fact, value, as_list=fact in _LIST_FACTS)
        return
    score = _first(code, SCORE)
    if score is not None:
        if when is None:
            report.ignored.append(f"{label}: score without a date")
            return
        visits.setdefault(when, {"date": when})[score] = _value(resource)
        return
    code_loinc = _first(code, LOINC)
    entry = loinc.get(code_loinc or "")
    if entry is not None and entry[0] in ("ck", "enzyme"):
        measured = _enzyme(resource, when)
        tags = [t.get("system") for t in (resource.get("meta") or {}).get("tag") or []]
        if entry[0] == "ck" and VISIT_TAG in tags and when is not None:
            measured.pop("date", None)
            visits.setdefault(when, {"date": when})["ck"] = measured
        elif entry[0] == "ck":
            ck.append(measured)
        else:
            data.setdefault("other_enzymes", []).append(measured | {"analyte": entry[1]})
        return
    if entry is not None and entry[0] == "vital" and entry[1] in ("weight", "height"):
        quantity = resource.get("valueQuantity") or {}
        unit = FROM_UCUM.get(str(quantity.get("code") or quantity.get("unit")),
                             quantity.get("unit"))
        data[entry[1]] = {"value": quantity.get("value"), "unit": unit}
        return
    if entry is not None and entry[0] == "genetic_test":
        genetic: dict[str, Any] = {"done": True}
        result_code = _first(resource.get("valueCodeableConcept"), GENETIC)
        answer = _answer(resource)
        if result_code:
            genetic["result"] = result_code
        elif answer:
            genetic["result"] = "diagnostic" if answer == "positive" else "negative"
        elif _first(resource.get("dataAbsentReason"), ABSENT) == "not-performed":
            genetic["done"] = False
        text = (resource.get("valueCodeableConcept") or {}).get("text")
        if text:
            genetic["diagnosis"] = text
        genes = [c.get("valueString") for c in resource.get("component") or []
                 if _first(c.get("code"), FACT) == "genetic_testing.genes"]
        if genes:
            genetic["genes"] = genes
        data["genetic_testing"] = genetic
        return
    antibody = _antibody_name(resource, loinc)
    if antibody is not None:
        result: dict[str, Any] = {}
        answer = _answer(resource)
        if answer:
            result["status"] = answer
        elif _first(resource.get("dataAbsentReason"), ABSENT) == "not-performed":
            result["status"] = "not_tested"
        else:
            report.ignored.append(f"{label}: anti-{antibody} without a positive/negative result")
            return
        method = _first(resource.get("method"), ASSAY)
        if method:
            result["method"] = method
        strength = next((_first(i, STRENGTH) for i in resource.get("interpretation") or []
                         if _first(i, STRENGTH)), None)
        if strength:
            result["strength"] = strength
        if when:
            result["date"] = when
        antibodies = data.setdefault("antibodies", {})
        if antibodies.get(antibody, {}).get("status") != "positive":
            antibodies[antibody] = result
        return
    codes = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in _coding(code)) or "no code"
    report.unrecognised_codes.append(f"{label}: Observation {codes} is not used by imnm")


def _answer(resource: Mapping[str, Any]) -> str | None:
    concept = resource.get("valueCodeableConcept") or {}
    answers = {c.code: c.concept for c in load_knowledge().codes_in("answer")}
    for coding in _coding(concept):
        if coding.get("system") == SNOMED and coding.get("code") in answers:
            return answers[coding["code"]]
    text = str(concept.get("text") or next((c.get("display") for c in _coding(concept)
                                            if c.get("display")), "")).lower()
    if text in ("positive", "detected", "present"):
        return "positive"
    if text in ("negative", "not detected", "absent"):
        return "negative"
    for interpretation in resource.get("interpretation") or []:
        code = _first(interpretation, INTERPRETATION)
        if code in ("POS", "DET"):
            return "positive"
        if code in ("NEG", "ND"):
            return "negative"
    return None


def _enzyme(resource: Mapping[str, Any], when: str | None) -> dict[str, Any]:
    quantity = resource.get("valueQuantity") or {}
    unit = FROM_UCUM.get(str(quantity.get("code") or quantity.get("unit") or "U/L"),
                         quantity.get("unit") or "U/L")
    result: dict[str, Any] = {"unit": unit}
    if quantity.get("value") is not None:
        result["value"] = quantity["value"]
    high = ((resource.get("referenceRange") or [{}])[0].get("high") or {}).get("value")
    if high is not None:
        result["upper_limit"] = high
    for interpretation in resource.get("interpretation") or []:
        flag = _first(interpretation, INTERPRETATION)
        if flag in ("H", "HH", "HU"):
            result["interpretation"] = "elevated"
        elif flag == "N":
            result["interpretation"] = "normal"
    if when:
        result["date"] = when
    performer = [p.get("display") for p in resource.get("performer") or [] if p.get("display")]
    if performer:
        result["lab"] = performer[0]
    return result


def _medication(resource: dict[str, Any], data: dict[str, Any], rx_index: dict[str, Any],
                report: ImportReport, label: str) -> None:
    if resource.get("status") in ("entered-in-error", "cancelled", "not-taken", "draft"):
        report.ignored.append(f"{label}: status {resource.get('status')}")
        return
    concept = resource.get("medicationCodeableConcept") or {}
    drug = _first(concept, DRUG) or rx_index.get(_first(concept, RXNORM) or "")
    if drug is None or drug not in Drug.__members__:
        codes = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in _coding(concept))
        report.unrecognised_codes.append(f"{label}: medication {codes or 'without a code'} is "
                                         "not an imnm treatment (statins are read as exposures)"
                                         if drug != "statin" else
                                         f"{label}: statin recorded as an exposure")
        if drug == "statin":
            data.setdefault("exposures", {})["statin"] = True
        return
    entry: dict[str, Any] = {"drug": drug}
    if concept.get("text") and drug == "other":
        entry["name"] = concept["text"]
    period = resource.get("effectivePeriod") or (resource.get("dispenseRequest") or {}).get(
        "validityPeriod") or {}
    start = period.get("start") or resource.get("effectiveDateTime") or resource.get(
        "authoredOn")
    if start:
        entry["start"] = _date(start)
    if period.get("end"):
        entry["end"] = _date(period["end"])
    dosage = (resource.get("dosage") or resource.get("dosageInstruction") or [{}])[0]
    quantity = ((dosage.get("doseAndRate") or [{}])[0] or {}).get("doseQuantity") or {}
    if quantity.get("value") is not None and quantity.get("unit"):
        entry["dose"] = {"value": quantity["value"], "unit": quantity["unit"]}
    route = (dosage.get("route") or {}).get("text")
    if route in ("oral", "iv", "sc", "im"):
        entry["route"] = route
    frequency = ((dosage.get("timing") or {}).get("code") or {}).get("text")
    if frequency:
        entry["frequency"] = frequency
    for extension in resource.get("extension") or []:
        if extension.get("url") == ADMINISTRATIONS:
            entry["administrations"] = extension.get("valueInteger")
    data.setdefault("treatments", []).append(entry)


def load_any(text: str | bytes) -> tuple[Patient, ImportReport | None]:
    """A patient file or a FHIR Bundle, whichever the JSON is."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return load_patient(text), None  # raises the usual malformed-JSON InputError
    if is_bundle(parsed):
        return from_bundle(parsed)
    return load_patient(parsed), None
