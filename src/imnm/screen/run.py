"""Run the screen: register the input, check what it provides, stage, screen, and return the
worklist. Missing tables or columns are reported and make the children they affect
"not assessable: missing X" (one more tier), never a crash.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from imnm.knowledge import Knowledge, load_knowledge
from imnm.screen.bundles import bundles_as_ndjson
from imnm.screen.definition import Parameters, ScreenDefinitionError, render
from imnm.screen.engines import (
    DuckDBEngine,
    Engine,
    InputUnusable,
    PostgresEngine,
    SparkEngine,
    is_postgres_url,
)
from imnm.screen.network import SUPPRESS_BELOW as SUPPRESS_BELOW
from imnm.screen.network import age_band, site_rows
from imnm.screen.sources import FHIR_RESOURCES, OMOP_TABLES

TIERS = ("test_for_antibodies", "review_dystrophy_label", "review_treatment", "not_assessable")
"""The tiers, in worklist order: what to do first comes first."""


COVERAGE_MEANING = {
    "rows": "rows read",
    "in_code_set": "in an imnm code set (read)",
    "outside_every_set": "outside every imnm code set (not relevant to the screen)",
    "concept_id_0": "concept id 0 (not mapped to a standard concept) and no usable source "
                    "concept: NOT READ",
    "concept_not_in_vocabulary": "concept id not found in CONCEPT: NOT READ",
    "ck_unit_unreadable": "CK results whose unit could not be read: NOT USED",
    "ck_without_value": "CK results without a value: NOT USED",
    "antibody_uninterpretable": "anti-HMGCR/anti-SRP results that could not be interpreted "
                                "(no coded answer, no interpretation code, no reference "
                                "range): read as not tested",
    "antibody_by_reference_range": "antibody results read as a number against their own "
                                   "reference range",
    "genetic_uninterpretable": "genetic results that could not be interpreted: NOT USED",
    "no_birth_year": "persons without a year of birth: NOT SCREENED",
    "no_birth_date": "patients without a readable birth date (kept, age unknown)",
    "no_known_code_system": "resources with no coding in a code system imnm reads: NOT READ",
    "subject_not_a_patient": "resources whose subject is no Patient of the input: NOT USED",
    "concept_ancestor_rows": "CONCEPT_ANCESTOR rows",
    "concept_relationship_hierarchy_rows": "CONCEPT_RELATIONSHIP rows of the hierarchy "
                                           "relationships",
    "in_code_set_by_display_text": "medications matched only by an ingredient name in their "
                                   "text (stated fallback; check the coding)",
}
# Items that count something the screen could not read or use: shown first, flagged.
UNREAD_ITEMS = {"concept_id_0", "concept_not_in_vocabulary", "ck_unit_unreadable",
                "ck_without_value", "antibody_uninterpretable", "genetic_uninterpretable",
                "no_birth_year", "no_known_code_system", "subject_not_a_patient",
                "in_code_set_by_display_text"}


class CoverageLine(BaseModel):
    """One count of what the screen read, used, or could not read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str
    item: str
    count: int
    meaning: str
    unread: bool


def _meaning(item: str) -> str:
    if item in COVERAGE_MEANING:
        return COVERAGE_MEANING[item]
    if item.startswith("unreadable_"):
        return f"values of {item.removeprefix('unreadable_')} present but unreadable " \
               "(read as empty)"
    if item.startswith("set_concepts_by_"):
        return f"code-set concepts found by {item.removeprefix('set_concepts_by_')}"
    if item.startswith("in_code_set_by_"):
        return f"matched through {item.removeprefix('in_code_set_by_').replace('_', ' ')}"
    return item.replace("_", " ")


def coverage_line(input_name: str, item: str, count: int) -> CoverageLine:
    """A coverage count with its meaning."""
    return CoverageLine(input=input_name, item=item, count=count, meaning=_meaning(item),
                        unread=(item in UNREAD_ITEMS or item.startswith("unreadable_"))
                        and count > 0)


class WorklistRow(BaseModel):
    """One child on the worklist, for one tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: str
    tier: str
    reasons: str
    sex: str | None
    age_years: int | None  # whole years at the screen date
    diagnosis_codes: str | None
    peak_ck_u_per_l: float | None
    peak_ck_multiple_of_uln: float | None
    anti_hmgcr: str
    anti_srp: str
    days_on_corticosteroid_alone: int | None
    months_on_corticosteroid_alone: float | None


@dataclass
class ScreenResult:
    """The worklist and what the input lacked."""

    engine: str
    source: str
    as_of: dt.date
    rows: list[WorklistRow]
    # children in scope by (sex, whole years of age or None)
    population_by_age: dict[tuple[str, int | None], int]
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    coverage: list[CoverageLine] = field(default_factory=list)
    knowledge_version: str = ""

    @property
    def population(self) -> int:
        """Children in scope."""
        return sum(self.population_by_age.values())

    def unread(self) -> list[CoverageLine]:
        """The coverage counts of what could not be read or used."""
        return [c for c in self.coverage if c.unread]

    def report(self) -> dict[str, Any]:
        """Everything but the rows, for a JSON report."""
        return {"engine": self.engine, "source": self.source, "as_of": self.as_of.isoformat(),
                "population_in_scope": self.population, "children_per_tier": self.counts(),
                "missing_inputs": self.missing, "notes": self.notes,
                "coverage": [c.model_dump() for c in self.coverage]}

    def counts(self) -> dict[str, int]:
        """Children per tier."""
        return dict(Counter(r.tier for r in self.rows))

    def aggregate(self) -> list[dict[str, str]]:
        """The site's aggregate rows (imnm.screen.network): children in scope and on the
        worklist per tier, sex and age band (1 to SUPPRESS_BELOW - 1 shown as "<10"), then
        the coverage counts (records, not children), each row with the versions."""
        from imnm import __version__

        population: Counter[tuple[str, str]] = Counter()
        for (sex, age), n in self.population_by_age.items():
            population[(sex or "unknown", age_band(age))] += n
        worklist = Counter((r.tier, r.sex or "unknown", age_band(r.age_years))
                           for r in self.rows)
        return site_rows(imnm_version=__version__, knowledge_version=self.knowledge_version,
                         as_of=self.as_of.isoformat(), population=dict(population),
                         worklist=dict(worklist), tiers=TIERS,
                         coverage=[(f"{c.input}.{c.item}", c.count) for c in self.coverage])


def worklist_order(row: WorklistRow) -> tuple[int, int, int, str]:
    """Tiers in worklist order (what to do first comes first), then person ids in numeric
    order when they are numbers (1271 before 10277), else as text."""
    tier = TIERS.index(row.tier) if row.tier in TIERS else len(TIERS)
    pid = row.person_id
    return (tier, 0, int(pid), "") if pid.isdigit() else (tier, 1, 0, pid)


# Staging views read more than once (by the screen, the coverage counts, the per-child route),
# each small once filtered by the code sets: computed once each, in this order. The code
# sets' roots come first: a few hundred rows whose
# size the engine then knows, so joins to CONCEPT_ANCESTOR and CONCEPT_RELATIONSHIP (millions
# of rows) build their hash tables on the roots, not on the vocabulary.
STAGED_VIEWS = {"omop": ("imnm_set_roots", "imnm_set_members", "imnm_set_concepts",
                         "imnm_condition", "imnm_measurement", "imnm_drug"),
                "fhir": ("imnm_condition", "imnm_measurement", "imnm_drug_matches")}
# Views that the SQL reads through a CTE more than once (each reads a large table): DuckDB and
# PostgreSQL compute such a CTE once, but Spark computes a CTE again at each place it is read,
# so on Spark these are staged too (each would otherwise read the measurement table, or every
# event table, three times).
STAGED_WHERE_CTES_INLINE = {"omop": ("imnm_measurement_hits", "imnm_tally"), "fhir": ()}


_CREATED_VIEW = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+TEMP(?:ORARY)?\s+VIEW\s+[\"`]?(\w+)",
                           re.IGNORECASE | re.MULTILINE)


def _created_view(statement: str) -> str | None:
    """The view a setup statement defines (None for anything else)."""
    found = _CREATED_VIEW.search(statement)
    return found.group(1).lower() if found else None


def _check_omop(engine: Engine, registered: dict[str, str]
                ) -> tuple[list[str], list[str], list[CoverageLine]]:
    missing, notes, unreadable = [], [], []
    for need in OMOP_TABLES:
        if need.name not in registered:
            if need.fatal:
                hint = " (name the vocabulary's schema or folder with --vocab)" \
                    if need.vocabulary else ""
                raise InputUnusable(f"OMOP input: table {need.name} is missing; the screen "
                                    f"cannot run without it{hint}")
            engine.empty_table(need)
            if need.vocabulary:
                notes.append(f"vocabulary table {need.name} is missing: no {need.affects}")
            else:
                missing.append(need.name)
            continue
        have = engine.columns(need.name)
        absent_required = [c for c, _ in need.required if c not in have]
        if absent_required:
            if need.fatal:
                raise InputUnusable(f"OMOP input: table {need.name} lacks required columns "
                                    f"{', '.join(absent_required)}")
            engine.empty_table(need)
            missing.append(f"{need.name} (no column {', '.join(absent_required)})")
            continue
        absent_optional = [(c, t) for c, t in need.optional if c not in have]
        for column, count in engine.conform(need).items():
            unreadable.append(coverage_line(need.name, f"unreadable_{column}", count))
        if absent_optional:
            engine.add_null_columns(need, absent_optional)
            notes.append(f"{need.name}: column(s) {', '.join(c for c, _ in absent_optional)} "
                         "absent, read as empty")
    return missing, notes, unreadable


def _vocabulary_notes(coverage: list[CoverageLine]) -> list[str]:
    counts = {c.item: c.count for c in coverage if c.input == "vocabulary"}
    ancestors = counts.get("concept_ancestor_rows", 0)
    relations = counts.get("concept_relationship_hierarchy_rows", 0)
    if ancestors == 0 and relations == 0:
        return ["the vocabulary has neither CONCEPT_ANCESTOR nor CONCEPT_RELATIONSHIP rows: "
                "code sets were matched on their own codes and on the product map of "
                "results.toml only, so a diagnosis, test or drug coded with a more specific "
                "concept is missed; load the full vocabulary (--vocab) to expand them"]
    if ancestors == 0:
        return ["CONCEPT_ANCESTOR is empty: code sets were expanded through "
                "CONCEPT_RELATIONSHIP (up to three steps) instead of by descendants"]
    return []


def _coverage(engine: Engine, source: str) -> list[CoverageLine]:
    raw = engine.rows("SELECT input, item, n FROM imnm_coverage")
    counts: dict[tuple[str, str], int] = {}
    for row in raw:
        counts[(str(row["input"]), str(row["item"]))] = int(row["n"] or 0)
    inputs = ("condition_occurrence", "measurement", "drug_exposure") if source == "omop" \
        else ("Condition", "Observation", "Medication")
    for name in inputs:
        for item in ("rows", "in_code_set") + (
                ("concept_id_0", "concept_not_in_vocabulary") if source == "omop"
                else ("no_known_code_system", "subject_not_a_patient")):
            counts.setdefault((name, item), 0)
        rows = counts.get((name, "rows"), 0)
        accounted = sum(counts.get((name, item), 0) for item in (
            "in_code_set", "concept_id_0", "concept_not_in_vocabulary", "no_known_code_system"))
        counts[(name, "outside_every_set")] = max(rows - accounted, 0)
    return [coverage_line(i, item, n) for (i, item), n in counts.items()]


def _inputs_view(missing: list[str]) -> str:
    def gone(prefixes: tuple[str, ...]) -> int:
        return int(any(m.split(" ")[0] in prefixes for m in missing))

    return ("CREATE OR REPLACE TEMPORARY VIEW imnm_inputs AS SELECT "
            f"{gone(('condition_occurrence', 'Condition'))} AS condition_missing, "
            f"{gone(('measurement', 'Observation'))} AS measurement_missing, "
            f"{gone(('drug_exposure', 'MedicationRequest'))} AS drug_missing")


def make_engine(name: Literal["duckdb", "spark", "postgres"], *,
                spark_master: str | None = None, session: Any = None,
                url: str | None = None) -> Engine:
    """An engine by name (PostgreSQL needs the database's URL)."""
    if name == "spark":
        return SparkEngine(session=session, master=spark_master)
    if name == "postgres":
        if url is None:
            raise InputUnusable("PostgreSQL: give the database as --omop postgresql://...")
        return PostgresEngine(url)
    return DuckDBEngine()


def run_screen(
    source: Literal["omop", "fhir"],
    location: str,
    *,
    engine: Engine | None = None,
    engine_name: Literal["duckdb", "spark", "postgres"] = "duckdb",
    as_of: dt.date | None = None,
    knowledge: Knowledge | None = None,
    parameters: dict[str, float] | None = None,
    progress: Callable[[str], Any] | None = None,
    cdm_schema: str | None = None,
    vocab: str | None = None,
) -> ScreenResult:
    """Screen the population in ``location`` (OMOP CDM, bulk FHIR NDJSON, or a folder of FHIR
    Bundles). ``cdm_schema`` names the CDM's schema in a DuckDB file (or Spark database);
    ``vocab`` a separate vocabulary schema, folder or DuckDB file."""
    kb = knowledge or load_knowledge()
    when = as_of or dt.date.today()
    params = Parameters.from_knowledge(kb, when, parameters)
    own = engine is None
    if engine is None and source == "omop" and is_postgres_url(location):
        engine_name = "postgres"  # the screen runs inside the site's database
    eng = engine or make_engine(engine_name, url=location)
    step = progress or (lambda _label: nullcontext())
    stack = ExitStack()
    try:
        with step("reading the input"):
            unreadable: list[CoverageLine] = []
            if source == "omop":
                registered = eng.register_omop(location, cdm_schema, vocab)
                missing, notes, unreadable = _check_omop(eng, registered)
            else:
                directory = Path(location)
                if not directory.is_dir():
                    raise InputUnusable(f"--fhir: got {location!r}; expected a folder of bulk "
                                        "NDJSON files (Patient.ndjson, Condition.ndjson, ...) "
                                        "or of FHIR Bundles (*.json, *.json.gz)")
                not_bundles: list[str] = []
                directory = stack.enter_context(bundles_as_ndjson(directory, not_bundles))
                present = eng.register_fhir(directory, FHIR_RESOURCES)
                if "Patient" not in present:
                    raise InputUnusable(f"--fhir: no Patient NDJSON in {location!r}; the screen "
                                        "cannot run without it")
                missing, notes = [], []
                if not_bundles:
                    notes.append(f"{len(not_bundles)} JSON file(s) or entries are not FHIR "
                                 "Bundles or resources and were not read: "
                                 f"{', '.join(not_bundles[:5])}"
                                 + (" ..." if len(not_bundles) > 5 else ""))
                for need in FHIR_RESOURCES:
                    if need.resource in present:
                        continue
                    if need.alternatives and any(a in present for a in need.alternatives):
                        notes.append(f"{need.resource}: absent ({need.alternatives[0]} read)")
                    elif not need.alternatives or need.resource == "MedicationRequest":
                        missing.append(need.resource)
        rendered = render(kb, params, eng.name, source)  # type: ignore[arg-type]
        with step("staging"):
            # Each staged view is computed as soon as it is defined: a view defined over
            # views not yet computed costs the engine a bind of the whole chain (DuckDB at
            # 100k children: 0.3 s of view definitions, against 0.01 s this way).
            staged = STAGED_VIEWS[source] + (
                STAGED_WHERE_CTES_INLINE[source] if eng.inlines_ctes else ())
            done = []
            for index, statement in enumerate(rendered.setup):
                eng.execute(statement)
                created = _created_view(statement)
                if created and index < rendered.lookups:
                    eng.lookup(created)
                elif created in staged:
                    eng.materialize(created)
                    done.append(created)
            if sorted(done) != sorted(staged):
                raise ScreenDefinitionError(f"staged views: computed {done}; expected each of "
                                            f"{list(staged)} defined once in the setup")
            eng.execute(_inputs_view(missing))
        with step("screening"):
            raw = eng.rows(rendered.query)
            by_age = {(str(r["sex"] or "unknown"),
                       None if r["age"] is None else int(r["age"])): int(r["n"])
                      for r in eng.rows(rendered.count_query)}
        with step("counting what could not be read"):
            coverage = unreadable + _coverage(eng, source)
        if source == "omop":
            notes += _vocabulary_notes(coverage)
        rows = sorted((_row(r) for r in raw), key=worklist_order)
        return ScreenResult(eng.name, source, when, rows, by_age, missing, notes, coverage,
                            kb.digest)
    except Exception as exc:
        if not _engine_error(exc):
            raise
        raise InputUnusable(f"{_shown(location)}: {_engine_message(exc)}") from None
    finally:
        stack.close()
        if own:
            eng.close()


def _shown(location: str) -> str:
    """The input as messages may name it: a database URL without its password."""
    if not is_postgres_url(location):
        return location
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _engine_error(exc: BaseException) -> bool:
    """An error the engine raised about the data it was given (DuckDB, Spark, Py4J)."""
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "pyspark", "py4j",
                                                  "psycopg")


def _engine_message(exc: BaseException) -> str:
    """The engine's message in one line, with quoted values that are not file paths blanked
    (a value that failed to convert may be patient data)."""
    text = str(exc).strip()
    lines = [part.strip() for part in text.splitlines() if part.strip()]
    line = lines[0] if lines else type(exc).__name__
    if line.startswith("An error occurred while calling"):  # Py4J: the Java error follows
        line = next((p.removeprefix(": ") for p in lines[1:]
                     if "Exception" in p or "Error" in p), line)
    if "Exception" in line and "Caused by" in text:  # Spark: the cause says more
        line = next(p.strip() for p in text.splitlines() if "Caused by" in p)

    def blank(match: re.Match[str]) -> str:
        inner = match.group(2)
        return match.group(0) if "/" in inner or "." in inner[-9:] else f"{match.group(1)}…" \
            f"{match.group(1)}"

    return re.sub(r"(['\"])(.*?)\1", blank, line)[:300]


def _row(raw: dict[str, Any]) -> WorklistRow:
    codes = raw.get("label_codes")
    days = raw.get("days_on_corticosteroid_alone")
    return WorklistRow(
        person_id=str(raw["person_id"]), tier=raw["tier"], reasons=raw["reasons"],
        sex=raw.get("sex"),
        age_years=None if raw.get("age_years") is None else int(raw["age_years"]),
        diagnosis_codes=";".join(sorted(set(codes.split(";")))) if codes else None,
        peak_ck_u_per_l=None if raw.get("peak_ck_u_per_l") is None
        else round(float(raw["peak_ck_u_per_l"]), 1),
        peak_ck_multiple_of_uln=None if raw.get("peak_ck_multiple_of_uln") is None
        else round(float(raw["peak_ck_multiple_of_uln"]), 2),
        anti_hmgcr=raw["anti_hmgcr"], anti_srp=raw["anti_srp"],
        days_on_corticosteroid_alone=None if days is None else int(days),
        months_on_corticosteroid_alone=None if days is None
        else round(int(days) / (365.25 / 12), 1))


def write_worklist(result: ScreenResult, path: Path) -> Path:
    """Write the worklist as CSV or Parquet (by suffix), atomically."""
    rows = [r.model_dump() for r in result.rows]
    columns = list(WorklistRow.model_fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [r[c] for r in rows] for c in columns}) if rows else pa.table(
            {c: pa.array([], type=pa.string()) for c in columns})
        pq.write_table(table, tmp)
    elif path.suffix.lower() == ".csv":
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(f"--out: got {path.suffix!r}; expected .csv or .parquet")
    tmp.replace(path)
    return path
