"""What reading and writing FHIR share: code-system URIs, imnm's own code systems, small
accessors, the Bundle check with fhir.resources, and the import report."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from imnm.codes import URIS, CodeSystem
from imnm.errors import InputError, Problem, shorten
from imnm.jsonio import check_depth
from imnm.knowledge import Knowledge

if TYPE_CHECKING:
    from imnm.fhir.shapes import Used

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
    notes: list[str] = field(default_factory=list)  # read, but by a stated fallback

    def summary(self, detail: int = 3) -> list[str]:
        """The report in a few lines: the fallbacks, then what was not used, grouped by
        resource type and reason with a count and ``detail`` examples each (a Synthea child
        has about 150 resources imnm does not use)."""
        from collections import defaultdict

        lines = list(self.notes)
        groups: dict[str, list[str]] = defaultdict(list)
        for item in self.ignored:
            label, _, reason = item.partition(": ")
            groups[f"{label.split('/', 1)[0]}: {reason}"].append(label)
        for key, labels in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            kind, _, reason = key.partition(": ")
            lines.append(f"{len(labels)} {kind} not used ({reason})"
                         + (f", e.g. {', '.join(labels[:detail])}" if len(labels) > 1 else
                            f": {labels[0]}"))
        codes = self.unrecognised_codes
        lines += codes[:detail]
        if len(codes) > detail:
            lines.append(f"and {len(codes) - detail} more coded entries not used")
        return lines


def _coding(codeable: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not codeable:
        return []
    return list(codeable.get("coding") or [])


def _first(codeable: Mapping[str, Any] | None, system: str) -> str | None:
    """The code of the first coding in ``system`` (a loop, not a generator: this runs several
    times for every result of every hook call)."""
    if codeable:
        for coding in codeable.get("coding") or ():
            if coding.get("system") == system:
                return coding.get("code")  # type: ignore[no-any-return]
    return None


def _date(value: object) -> str | None:
    return str(value)[:10] if value else None


def _ref(resource: Mapping[str, Any], key: str = "subject") -> str | None:
    reference = (resource.get(key) or {}).get("reference")
    return str(reference) if reference else None


# --------------------------------------------------------------------------- export


def _codes_for(knowledge: Knowledge, set_name: str, concept: str) -> list[str]:
    return [c.code for c in knowledge.codes_in(set_name, concept)]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": UCUM_UNITS.get(unit, unit)}


def answer_coding(knowledge: Knowledge, answer: str) -> dict[str, str]:
    """The SNOMED CT coding of a 'positive' or 'negative' laboratory answer."""
    entry = knowledge.codes_in("answer", answer)[0]
    return {"system": SNOMED, "code": entry.code, "display": entry.display}


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")


def _is_resource_type(kind: str) -> bool:
    """True when fhir.resources knows ``kind`` as an R4 resource type. Only a name shaped like
    one is asked (and remembered), so hostile names cannot fill the memo."""
    return kind in _READ_TYPES or (bool(_TYPE_NAME.fullmatch(kind)) and _known_type(kind))


_READ_TYPES = frozenset(("Bundle", "Patient", "Condition", "Observation", "MedicationStatement",
                         "MedicationRequest", "MedicationAdministration", "FamilyMemberHistory",
                         "Procedure", "DiagnosticReport"))
"""R4 resource types known without asking fhir.resources: the ones imnm reads (every entry
of a real record is one of these or nearly so)."""


@lru_cache(maxsize=256)
def _known_type(kind: str) -> bool:
    """Asked once per name: the answer imports the resource's model."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(kind)
    except (ValueError, KeyError):
        return False
    return True


MAX_BUNDLE_NESTING = 8
"""Most Bundles inside Bundles accepted (operational, not clinical). A CDS Hooks call nests two
(the call's collection, each prefetch's searchset); a searchset that returns a Bundle, three."""


def _frame_problems(bundle: Mapping[str, Any]) -> list[Problem]:
    """What is wrong with a Bundle's frame (and that of the searchset Bundles nested in it),
    in one walk: entries a list of objects, each resource an object, the timestamp an instant,
    Bundles nested at most :data:`MAX_BUNDLE_NESTING` deep; then, when the frame is sound,
    every resource's resourceType one FHIR R4 knows (checked before the model, which fails on
    the others with a KeyError or TypeError rather than a validation error)."""
    from imnm.fhir.shapes import _datetime

    frame: list[Problem] = []
    types: list[Problem] = []
    stack: list[tuple[Mapping[str, Any], str, int]] = [(bundle, "bundle", 1)]
    while stack:
        node, where, nesting = stack.pop()
        if nesting > MAX_BUNDLE_NESTING:
            frame.append(Problem(where, f"(Bundles nested more than {MAX_BUNDLE_NESTING} deep)",
                                 f"Bundles nested at most {MAX_BUNDLE_NESTING} deep"))
            continue
        stamp = node.get("timestamp")
        if stamp is not None and (_datetime(stamp) is not None or len(str(stamp)) < 10):
            frame.append(Problem(f"{where}.timestamp", shorten(stamp),
                                 "a FHIR instant (YYYY-MM-DDThh:mm:ssZ)"))
        entries = node.get("entry")
        if entries is None:
            continue
        if not isinstance(entries, list):
            frame.append(Problem(f"{where}.entry", shorten(entries), "a JSON array"))
            continue
        for i, entry in enumerate(entries):
            # (a dict first: parsed JSON is dicts, and the test skips an ABC check)
            entry_ok = isinstance(entry, dict) or isinstance(entry, Mapping)
            resource = entry.get("resource") if entry_ok else entry
            if not entry_ok or not (isinstance(resource, dict) or isinstance(resource, Mapping)):
                frame.append(Problem(f"{where}.entry.{i}", shorten(entry),
                                     "an entry with a resource (a JSON object)"))
                continue
            kind = resource.get("resourceType")
            if not isinstance(kind, str) or not _is_resource_type(kind):
                if len(types) < 20:
                    types.append(Problem(f"{where}.entry.{i}.resource.resourceType",
                                         shorten(kind), "a FHIR R4 resource type"))
                continue
            if kind == "Bundle":
                stack.append((resource, f"{where}.entry.{i}.resource", nesting + 1))
    return frame or types


def _validate_read(bundle: Mapping[str, Any], used: Used | None = None
                   ) -> list[dict[str, Any]]:
    """Check only what imnm reads (:mod:`imnm.fhir.shapes`): the frame, the resource types,
    and the fields the readers take, each for its FHIR JSON type. ``used`` says which
    Observations imnm reads beyond their status and code (see
    :func:`~imnm.fhir.shapes.read_problems`).

    There is no walk of the whole tree for its depth (:func:`~imnm.jsonio.check_depth`, which
    the full check and every file keep): nothing here or in the readers descends further than
    a shape's own fields, or than :data:`MAX_BUNDLE_NESTING` Bundles, so a value nested deep in
    a field imnm does not read is never walked, and one in a field it reads is refused at the
    first level that is not the field's type. What the JSON parser itself cannot take it
    refuses before this. The walk was a tenth of a hook call with a real record's 140 results
    (measured, see :mod:`imnm.service.lane`).

    Returns the Bundle's resources (:func:`resources_of`), the very objects checked, for the
    reader to read."""
    from imnm.fhir.shapes import read_problems

    problems = _frame_problems(bundle)
    resources = [] if problems else list(resources_of(bundle))
    for i, resource in enumerate(resources):
        problems += read_problems(resource, f"bundle.resource {i} "
                                  f"({resource.get('resourceType')})", used)
        if len(problems) >= 20:
            break
    if problems:
        raise InputError(problems[:20])
    return resources


def _validate_bundle(bundle: Mapping[str, Any]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    check_depth(bundle, "bundle")
    problems = _frame_problems(bundle)
    if problems:
        raise InputError(problems)
    try:
        Bundle.model_validate(bundle)
    except (KeyError, TypeError, AttributeError):  # fhir.resources' own failures, said plainly
        raise InputError([Problem("bundle", "(a Bundle fhir.resources cannot read)",
                                  "a FHIR R4 Bundle")]) from None
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
        if not isinstance(resource, dict) and not isinstance(resource, Mapping):
            continue  # (the dict test first: parsed JSON is dicts, and it skips an ABC check)
        if resource.get("resourceType") == "Bundle":
            yield from resources_of(resource)
        else:
            yield dict(resource)


