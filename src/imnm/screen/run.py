"""Run the screen: register the input, check what it provides, stage, screen, and return the
worklist. Missing tables or columns are reported and make the children they affect
"not assessable: missing X" (one more tier), never a crash.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from imnm.knowledge import Knowledge, load_knowledge
from imnm.screen.definition import Parameters, render
from imnm.screen.engines import DuckDBEngine, Engine, InputUnusable, SparkEngine
from imnm.screen.sources import FHIR_RESOURCES, OMOP_TABLES

SUPPRESS_BELOW = 10  # aggregate counts under 10 are shown as "<10" (as Cumulus does)
TIERS = ("test_for_antibodies", "review_dystrophy_label", "review_treatment", "not_assessable")


class WorklistRow(BaseModel):
    """One child on the worklist, for one tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: str
    tier: str
    reasons: str
    sex: str | None
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
    population: int
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Children per tier."""
        return dict(Counter(r.tier for r in self.rows))

    def aggregate(self) -> list[dict[str, str]]:
        """Counts per tier and sex, counts under 10 suppressed."""
        counted = Counter((r.tier, r.sex or "unknown") for r in self.rows)
        out = []
        for tier in TIERS:
            for sex in ("female", "male", "unknown"):
                n = counted.get((tier, sex), 0)
                out.append({"tier": tier, "sex": sex,
                            "children": str(n) if n == 0 or n >= SUPPRESS_BELOW else "<10"})
        return out


def _check_omop(engine: Engine, registered: dict[str, str]) -> tuple[list[str], list[str]]:
    missing, notes = [], []
    for need in OMOP_TABLES:
        if need.name not in registered:
            if need.fatal:
                raise InputUnusable(f"OMOP input: table {need.name} is missing; the screen "
                                    "cannot run without it")
            engine.empty_table(need)
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
        if absent_optional:
            engine.add_null_columns(need, absent_optional)
            notes.append(f"{need.name}: column(s) {', '.join(c for c, _ in absent_optional)} "
                         "absent, read as empty")
    return missing, notes


def _inputs_view(missing: list[str]) -> str:
    def gone(prefixes: tuple[str, ...]) -> int:
        return int(any(m.split(" ")[0] in prefixes for m in missing))

    return ("CREATE OR REPLACE TEMPORARY VIEW imnm_inputs AS SELECT "
            f"{gone(('condition_occurrence', 'Condition'))} AS condition_missing, "
            f"{gone(('measurement', 'Observation'))} AS measurement_missing, "
            f"{gone(('drug_exposure', 'MedicationRequest'))} AS drug_missing")


def make_engine(name: Literal["duckdb", "spark"], *, spark_master: str | None = None,
                session: Any = None) -> Engine:
    """An engine by name."""
    if name == "spark":
        return SparkEngine(session=session, master=spark_master)
    return DuckDBEngine()


def run_screen(
    source: Literal["omop", "fhir"],
    location: str,
    *,
    engine: Engine | None = None,
    engine_name: Literal["duckdb", "spark"] = "duckdb",
    as_of: dt.date | None = None,
    knowledge: Knowledge | None = None,
    parameters: dict[str, float] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> ScreenResult:
    """Screen the population in ``location`` (OMOP CDM or bulk FHIR NDJSON)."""
    kb = knowledge or load_knowledge()
    when = as_of or dt.date.today()
    params = Parameters.from_knowledge(kb, when, parameters)
    own = engine is None
    eng = engine or make_engine(engine_name)
    step = progress or (lambda _label: nullcontext())
    try:
        with step("reading the input"):
            if source == "omop":
                registered = eng.register_omop(location)
                missing, notes = _check_omop(eng, registered)
            else:
                directory = Path(location)
                if not directory.is_dir():
                    raise InputUnusable(f"--fhir: got {location!r}; expected a folder of bulk "
                                        "NDJSON files (Patient.ndjson, Condition.ndjson, ...)")
                present = eng.register_fhir(directory, FHIR_RESOURCES)
                if "Patient" not in present:
                    raise InputUnusable(f"--fhir: no Patient NDJSON in {location!r}; the screen "
                                        "cannot run without it")
                missing, notes = [], []
                for need in FHIR_RESOURCES:
                    if need.resource in present:
                        continue
                    if need.alternatives and any(a in present for a in need.alternatives):
                        notes.append(f"{need.resource}: absent ({need.alternatives[0]} read)")
                    elif not need.alternatives or need.resource == "MedicationRequest":
                        missing.append(need.resource)
        rendered = render(kb, params, eng.name, source)  # type: ignore[arg-type]
        with step("staging"):
            for statement in rendered.setup:
                eng.execute(statement)
            eng.execute(_inputs_view(missing))
        with step("screening"):
            raw = eng.rows(rendered.query)
            population = int(eng.rows(rendered.count_query)[0]["n"])
        rows = sorted((_row(r) for r in raw), key=lambda r: (r.tier, r.person_id))
        return ScreenResult(eng.name, source, when, rows, population, missing, notes)
    finally:
        if own:
            eng.close()


def _row(raw: dict[str, Any]) -> WorklistRow:
    codes = raw.get("label_codes")
    days = raw.get("days_on_corticosteroid_alone")
    return WorklistRow(
        person_id=str(raw["person_id"]), tier=raw["tier"], reasons=raw["reasons"],
        sex=raw.get("sex"),
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
