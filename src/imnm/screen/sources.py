"""What each input must provide: tables, columns, and for FHIR the resource schema.

Each input type names the tables and columns its staging SQL reads. ``required`` columns make
a table unusable when absent (the table is then treated as missing); ``optional`` columns are
filled with NULL, and the screen says which. A missing table makes the children it would
affect "not assessable: missing <table>", never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableNeed:
    """A table the staging SQL reads, and the columns it needs from it."""

    name: str
    required: tuple[tuple[str, str], ...]  # (column, neutral type)
    optional: tuple[tuple[str, str], ...] = ()
    affects: str = ""  # what is not assessable without it
    fatal: bool = False  # without it nothing can be screened
    vocabulary: bool = False  # a vocabulary table: without it code sets are not expanded

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """Every column, required first."""
        return self.required + self.optional


OMOP_TABLES: tuple[TableNeed, ...] = (
    TableNeed("person", (("person_id", "BIGINT"), ("gender_concept_id", "BIGINT"),
                         ("year_of_birth", "INTEGER")),
              (("month_of_birth", "INTEGER"), ("day_of_birth", "INTEGER")),
              fatal=True),
    TableNeed("concept", (("concept_id", "BIGINT"), ("concept_code", "VARCHAR"),
                          ("vocabulary_id", "VARCHAR"), ("concept_name", "VARCHAR")),
              fatal=True, vocabulary=True),
    TableNeed("concept_ancestor", (("ancestor_concept_id", "BIGINT"),
                                   ("descendant_concept_id", "BIGINT")),
              affects="code-set descendants", vocabulary=True),
    TableNeed("concept_relationship", (("concept_id_1", "BIGINT"), ("concept_id_2", "BIGINT"),
                                       ("relationship_id", "VARCHAR")),
              affects="code-set expansion without concept_ancestor", vocabulary=True),
    TableNeed("condition_occurrence", (("person_id", "BIGINT"), ("condition_concept_id", "BIGINT"),
                                       ("condition_start_date", "DATE")),
              (("condition_source_concept_id", "BIGINT"),),
              affects="diagnosis labels"),
    TableNeed("measurement", (("person_id", "BIGINT"), ("measurement_concept_id", "BIGINT"),
                              ("measurement_date", "DATE")),
              (("value_as_number", "DOUBLE"), ("value_as_concept_id", "BIGINT"),
               ("unit_concept_id", "BIGINT"), ("unit_source_value", "VARCHAR"),
               ("range_high", "DOUBLE"), ("value_source_value", "VARCHAR")),
              affects="CK, antibody and genetic results"),
    TableNeed("drug_exposure", (("person_id", "BIGINT"), ("drug_concept_id", "BIGINT"),
                                ("drug_exposure_start_date", "DATE")),
              (("drug_exposure_end_date", "DATE"), ("drug_source_concept_id", "BIGINT")),
              affects="treatments"),
)

CDM_TABLE_NAMES = tuple(t.name for t in OMOP_TABLES if not t.vocabulary)
VOCABULARY_TABLE_NAMES = tuple(t.name for t in OMOP_TABLES if t.vocabulary)

# FHIR R4 resources, as the screen reads them from bulk NDJSON. One schema for both engines:
# rendered to DuckDB types (read_json columns=) and to Spark DDL (spark.read.schema).
CODING = ("struct", (("system", "string"), ("code", "string"), ("display", "string")))
CODEABLE = ("struct", (("coding", ("array", CODING)), ("text", "string")))
REFERENCE = ("struct", (("reference", "string"),))
PERIOD = ("struct", (("start", "string"), ("end", "string")))
QUANTITY = ("struct", (("value", "double"), ("unit", "string"), ("code", "string")))


@dataclass(frozen=True)
class FhirNeed:
    """A FHIR resource type the screen reads, with the fields it uses."""

    resource: str
    view: str
    fields: tuple[tuple[str, object], ...]
    affects: str = ""
    fatal: bool = False
    alternatives: tuple[str, ...] = field(default=())


FHIR_RESOURCES: tuple[FhirNeed, ...] = (
    FhirNeed("Patient", "fhir_patient",
             (("id", "string"), ("birthDate", "string"), ("gender", "string")), fatal=True),
    FhirNeed("Condition", "fhir_condition",
             (("id", "string"), ("subject", REFERENCE), ("code", CODEABLE),
              ("clinicalStatus", CODEABLE), ("verificationStatus", CODEABLE),
              ("onsetDateTime", "string"), ("recordedDate", "string")),
             affects="diagnosis labels"),
    FhirNeed("Observation", "fhir_observation",
             (("id", "string"), ("subject", REFERENCE), ("code", CODEABLE),
              ("valueQuantity", QUANTITY), ("valueCodeableConcept", CODEABLE),
              ("valueString", "string"),
              ("interpretation", ("array", CODEABLE)),
              ("referenceRange", ("array", ("struct", (("high", QUANTITY),)))),
              ("effectiveDateTime", "string"), ("status", "string")),
             affects="CK, antibody and genetic results"),
    FhirNeed("MedicationRequest", "fhir_medicationrequest",
             (("id", "string"), ("subject", REFERENCE),
              ("medicationCodeableConcept", CODEABLE), ("authoredOn", "string"),
              ("status", "string"),
              ("dispenseRequest", ("struct", (("validityPeriod", PERIOD),)))),
             affects="treatments", alternatives=("MedicationAdministration",)),
    FhirNeed("MedicationAdministration", "fhir_medicationadministration",
             (("id", "string"), ("subject", REFERENCE),
              ("medicationCodeableConcept", CODEABLE), ("effectivePeriod", PERIOD),
              ("effectiveDateTime", "string"), ("status", "string")),
             affects="treatments", alternatives=("MedicationRequest",)),
)


def duckdb_type(kind: object) -> str:
    """A neutral FHIR field type as a DuckDB type."""
    if kind == "string":
        return "VARCHAR"
    if kind == "double":
        return "DOUBLE"
    if isinstance(kind, tuple) and kind[0] == "array":
        return duckdb_type(kind[1]) + "[]"
    if isinstance(kind, tuple) and kind[0] == "struct":
        inner = ", ".join(f'"{n}" {duckdb_type(t)}' for n, t in kind[1])
        return f"STRUCT({inner})"
    raise ValueError(f"unknown type {kind!r}")


def spark_type(kind: object) -> str:
    """A neutral FHIR field type as Spark DDL."""
    if kind == "string":
        return "STRING"
    if kind == "double":
        return "DOUBLE"
    if isinstance(kind, tuple) and kind[0] == "array":
        return f"ARRAY<{spark_type(kind[1])}>"
    if isinstance(kind, tuple) and kind[0] == "struct":
        inner = ", ".join(f"`{n}`: {spark_type(t)}" for n, t in kind[1])
        return f"STRUCT<{inner}>"
    raise ValueError(f"unknown type {kind!r}")
