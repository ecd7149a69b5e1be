"""A FHIR R4 Bundle about one child as a :class:`~imnm.patient.Patient`.

Every resource or code imnm cannot use is listed in the :class:`ImportReport`, never dropped in
silence. Results and medications are read with the same knowledge as the population screen
(results.toml): RxNorm products resolve to their ingredient (else, as a stated fallback, an
ingredient's name in the display text), and an antibody result is read from a coded answer,
an interpretation code, or its number against its own reference range.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from imnm.codes import URIS, CodeSystem
from imnm.errors import InputError, Problem
from imnm.fhir.common import (
    ABSENT,
    ADMINISTRATIONS,
    ANTIBODY,
    ASSAY,
    BIOPSY,
    CLINICAL,
    DRUG,
    FACT,
    FROM_UCUM,
    GENETIC,
    ICD10CM,
    INTERPRETATION,
    LOINC,
    RECORD_ID,
    RXNORM,
    SCORE,
    SNOMED,
    STRENGTH,
    VERIFICATION,
    VISIT_TAG,
    ImportReport,
    _coding,
    _date,
    _first,
    _validate_bundle,
    _validate_read,
    is_bundle,
    resources_of,
)
from imnm.jsonio import parse_json
from imnm.knowledge import Knowledge, load_knowledge
from imnm.patient import Drug, Patient, load_patient
from imnm.patient.reading import validate_patient
from imnm.quantities import read_activity_unit
from imnm.vocabulary import antibody_named


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
        if resource.get(key) is not None:  # a null value is no value (FHIR has no nulls)
            value = resource[key]
            return value[:10] if key == "valueDateTime" and isinstance(value, str) else value
    if "valueQuantity" in resource:
        return (resource["valueQuantity"] or {}).get("value")
    return None


def from_bundle(bundle: Mapping[str, Any], knowledge: Knowledge | None = None,
                *, as_of: dt.date | None = None,
                validate: Literal["full", "read"] = "full") -> tuple[Patient, ImportReport]:
    """Read a FHIR R4 Bundle about one child. Raises InputError when it cannot be used.

    ``validate="full"`` checks the whole Bundle against FHIR R4 (fhir.resources);
    ``"read"`` checks only the fields imnm reads, for their JSON types (the CDS Hooks
    service: a fraction of the cost, the same kind of error)."""
    kb = knowledge or load_knowledge()
    loinc = kb.loinc_index()
    # The light check judges each Observation used or not (_observation_used); the reader
    # keeps, by object, the results it judged unused (set-aside statuses apart: _observation
    # names those), to name them rather than work the verdict out again.
    unused: set[int] = set()
    if validate == "read":
        def used(resource: Mapping[str, Any]) -> bool:
            verdict = _observation_used(resource, loinc)
            if not verdict and resource.get("status") not in _SET_ASIDE:
                unused.add(id(resource))
            return verdict

        resources = _validate_read(bundle, used=used)
    else:
        _validate_bundle(bundle)
        resources = list(resources_of(bundle))
    report = ImportReport()
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
    for resource in resources:
        kind = resource.get("resourceType")
        report.resources_read += 1
        label = f"{kind}/{resource.get('id', '?')}"
        if kind == "Patient":
            continue
        if kind == "Condition":
            _condition(resource, data, kb, report, label)
        elif kind == "Observation":
            if id(resource) in unused:
                _not_used(resource.get("code") or {}, report, label)  # as _observation would
            else:
                _observation(resource, data, ck, visits, loinc, report, label)
        elif kind in ("MedicationStatement", "MedicationRequest", "MedicationAdministration"):
            _medication(resource, data, kb, report, label)
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
        return validate_patient(data), report
    except InputError as exc:
        raise InputError(exc.problems, record_id=record_id) from None


def _condition(resource: dict[str, Any], data: dict[str, Any], kb: Knowledge,
               report: ImportReport, label: str) -> None:
    verification = _first(resource.get("verificationStatus"), VERIFICATION)
    if verification == "entered-in-error":
        report.ignored.append(f"{label}: entered in error")
        return
    clinical = _first(resource.get("clinicalStatus"), CLINICAL)
    status = ("refuted" if verification == "refuted" else
              "resolved" if clinical in ("resolved", "inactive", "remission") else "active")
    code = resource.get("code") or {}
    text = _concept_text(code) or None
    entry: dict[str, Any] = {"label": text or "(no text)", "status": status}
    for coding in _coding(code):
        system = {ICD10CM: "icd10cm", SNOMED: "snomedct"}.get(coding.get("system", ""))
        if system and coding.get("code"):
            entry |= {"system": system, "code": coding["code"]}
            if not kb.is_coded(CodeSystem(system), coding["code"]):
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


def _antibody_name(code: Mapping[str, Any], firsts: dict[Any, Any],
                   loinc: dict[str, tuple[str, str | None]]) -> str | None:
    """The antibody a result's code names: imnm's own code, any LOINC code of an antibody
    test, else its words. ``firsts``: :func:`_first_codes` of ``code``."""
    own = firsts.get(ANTIBODY)
    if own:
        return str(own)
    for coding in code.get("coding") or ():
        if coding.get("system") == LOINC:
            entry = loinc.get(coding.get("code") or "")
            if entry is not None and entry[0] == "antibody_test":
                return entry[1]
    return _antibody_in_words(_concept_text(code))


def _concept_text(code: Mapping[str, Any]) -> str:
    """A CodeableConcept in words: its text, else its first display ("" when neither)."""
    text = code.get("text")
    if not text:
        for coding in code.get("coding") or ():
            text = coding.get("display")
            if text:
                break
    return str(text or "")


def _first_codes(code: Mapping[str, Any]) -> dict[Any, Any]:
    """System -> the code of its first coding (what :func:`_first` gives for each system), in
    one pass over the codings."""
    found: dict[Any, Any] = {}
    for coding in code.get("coding") or ():
        system = coding.get("system")
        if system not in found:
            found[system] = coding.get("code")
    return found


_FILLER = frozenset(("antibody", "antibodies", "ab", "igg", "serum", "plasma", "in", "level",
                     "anti"))
_WORD_BREAKS = re.compile(r"[\s,;:()\[\]-]+")


@lru_cache(maxsize=4096)
def _antibody_in_words(text: str) -> str | None:
    """The antibody an uncoded result's text names ("Anti-SRP antibody, serum"), or None.
    Remembered by text: a record repeats the same few hundred result names, nearly none an
    antibody (bounded, so hostile texts cannot fill it)."""
    words = [w for w in _WORD_BREAKS.split(text) if w and w.lower() not in _FILLER]
    found = antibody_named("".join(words)) if words else None
    return found.value if found is not None else None


_OWN_SYSTEMS = frozenset((FACT, SCORE, ANTIBODY))  # a coding in one: the result is read
_SET_ASIDE = ("entered-in-error", "cancelled")  # statuses of results never read


def _observation_used(resource: Mapping[str, Any],
                      loinc: dict[str, tuple[str, str | None]]) -> bool:
    """False when :func:`_observation` reads no more of a result than its status and code
    (a result imnm does not use, or one entered in error), so that its other fields need no
    check. Errs towards True: any coding in an imnm system or a LOINC code imnm knows."""
    if resource.get("status") in _SET_ASIDE:
        return False
    code = resource.get("code") or {}
    for coding in code.get("coding") or ():
        system = coding.get("system")
        if system in _OWN_SYSTEMS or (system == LOINC and coding.get("code") in loinc):
            return True
    return _antibody_in_words(_concept_text(code)) is not None  # _antibody_name's last try


def _observation(resource: dict[str, Any], data: dict[str, Any], ck: list[dict[str, Any]],
                 visits: dict[str, dict[str, Any]], loinc: dict[str, tuple[str, str | None]],
                 report: ImportReport, label: str) -> None:
    if resource.get("status") in _SET_ASIDE:
        report.ignored.append(f"{label}: status {resource.get('status')}")
        return
    code = resource.get("code") or {}
    firsts = _first_codes(code)
    fact = firsts.get(FACT)
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
    # The date is read only in the branches that use it: of a result imnm does not use, only
    # status and code are read (and checked: _observation_used).
    score = firsts.get(SCORE)
    if score is not None:
        when = _date(resource.get("effectiveDateTime"))
        if when is None:
            report.ignored.append(f"{label}: score without a date")
            return
        visits.setdefault(when, {"date": when})[score] = _value(resource)
        return
    code_loinc = firsts.get(LOINC)
    entry = loinc.get(code_loinc or "")
    if entry is not None and entry[0] in ("ck", "enzyme"):
        when = _date(resource.get("effectiveDateTime"))
        measured = _enzyme(resource, when)
        if measured is None:
            quantity = resource.get("valueQuantity") or {}
            report.ignored.append(
                f"{label}: {entry[1]} in {quantity.get('code') or quantity.get('unit')!r}, "
                "not a unit of activity imnm reads (U/L, IU/L, µkat/L): not used")
            return
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
        answer, _how = _answer(resource)
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
    antibody = _antibody_name(code, firsts, loinc)
    if antibody is not None:
        when = _date(resource.get("effectiveDateTime"))
        result: dict[str, Any] = {}
        answer, how = _answer(resource)
        if answer:
            result["status"] = answer
            if how == "reference_range":
                report.notes.append(f"{label}: anti-{antibody} read as {answer} from its "
                                    "value against its own reference range")
        elif _first(resource.get("dataAbsentReason"), ABSENT) == "not-performed":
            result["status"] = "not_tested"
        else:
            report.ignored.append(f"{label}: anti-{antibody} could not be interpreted (no coded "
                                  "answer, interpretation code or reference range): read as "
                                  "not tested")
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
    _not_used(code, report, label)


def _not_used(code: Mapping[str, Any], report: ImportReport, label: str) -> None:
    """Name a result imnm does not use, by its codes."""
    codes = ", ".join(f"{c.get('system')}|{c.get('code')}" for c in _coding(code)) or "no code"
    report.unrecognised_codes.append(f"{label}: Observation {codes} is not used by imnm")


_SYSTEMS = {uri: system.value for system, uri in URIS.items()}  # FHIR system URI -> imnm


def _answer(resource: Mapping[str, Any], knowledge: Knowledge | None = None
            ) -> tuple[str | None, str | None]:
    """('positive' | 'negative' | None, how it was read) for a qualitative result, in the
    screen's order: a coded answer (SNOMED CT or LOINC answer codes, or the whole text), an
    HL7 interpretation code, the number against the result's own reference range."""
    kb = knowledge or load_knowledge()
    concept = resource.get("valueCodeableConcept") or {}
    coded = {kb.answer_of(_SYSTEMS.get(str(c.get("system")), ""), str(c.get("code")))
             for c in _coding(concept)} - {None}
    if len(coded) == 1:
        return coded.pop(), "coded"
    text = _concept_text(concept) or resource.get("valueString")
    worded = kb.answer_of_text(str(text)) if text else None
    if worded:
        return worded, "coded"
    for interpretation in resource.get("interpretation") or []:
        flag = kb.answer_of_interpretation(_first(interpretation, INTERPRETATION))
        if flag:
            return flag, "interpretation"
    quantity = resource.get("valueQuantity") or {}
    high = ((resource.get("referenceRange") or [{}])[0].get("high") or {}).get("value")
    if quantity.get("value") is not None and high is not None:
        return ("positive" if float(quantity["value"]) > float(high) else "negative",
                "reference_range")
    return None, None


def _enzyme(resource: Mapping[str, Any], when: str | None) -> dict[str, Any] | None:
    """An enzyme result, or None when it has a value in no unit of activity imnm reads (the
    screen counts the same result as ck_unit_unreadable; a unit is never assumed)."""
    quantity = resource.get("valueQuantity") or {}
    unit = read_activity_unit(quantity.get("code")) or read_activity_unit(quantity.get("unit"))
    if quantity.get("value") is not None and unit is None:
        return None
    result: dict[str, Any] = {"unit": unit or "U/L"}
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


def drug_of(concept: Mapping[str, Any], knowledge: Knowledge) -> tuple[str | None, str]:
    """(imnm drug concept or None, how) for a medication CodeableConcept: imnm's own code,
    an RxNorm ingredient or product (results.toml), else, as a stated fallback, an
    ingredient's name as a whole word of its text or display ("display_text")."""
    own = _first(concept, DRUG)
    if own:
        return own, "code"
    for coding in _coding(concept):
        drug = knowledge.drug_of_rxcui(str(coding.get("code"))) \
            if coding.get("system") == RXNORM else None
        if drug is not None:
            return drug, "code"
    words = f" {re.sub(r'[^a-z0-9]+', ' ', _concept_text(concept).lower())} "
    for name, drug in knowledge.drug_names():
        if f" {name} " in words:
            return drug, "display_text"
    return None, "none"


def _medication(resource: dict[str, Any], data: dict[str, Any], knowledge: Knowledge,
                report: ImportReport, label: str) -> None:
    if resource.get("status") in ("entered-in-error", "cancelled", "not-taken", "draft"):
        report.ignored.append(f"{label}: status {resource.get('status')}")
        return
    concept = resource.get("medicationCodeableConcept") or {}
    drug, how = drug_of(concept, knowledge)
    if how == "display_text":
        report.notes.append(f"{label}: medication read as {drug} from its text (no RxNorm code "
                            "imnm knows); check the coding")
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
    parsed = parse_json(text)
    if is_bundle(parsed):
        return from_bundle(parsed)
    return load_patient(parsed), None
