"""Synthetic populations for testing and timing the screen, with a ground-truth label per child.

The mix is an engineering design, not epidemiology: most children have no muscle disease;
boys with genetically confirmed Duchenne and very high CK; confirmed limb-girdle dystrophies;
juvenile dermatomyositis; dystrophy labels with normal CK; and planted IMNM children —
mislabelled as a dystrophy and never tested, mislabelled with a positive antibody, treated
well, and left on corticosteroid alone. The codes are real (from ``code_sets.toml``); OMOP
concept ids other than gender are synthetic. The same seed gives the same population, written
as OMOP CDM (a DuckDB file) or as bulk FHIR NDJSON, so the two routes can be compared.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imnm.fhir import answer_coding
from imnm.knowledge import Knowledge, load_knowledge

AS_OF = dt.date(2025, 6, 30)  # the synthetic population's "today"; screen with --as-of
CK_LOINC, HMGCR_LOINC, SRP_LOINC, GENETIC_LOINC = "2157-6", "93493-5", "33921-8", "51969-4"
RXNORM = {"prednisolone": "8638", "prednisone": "8640", "methotrexate": "6851",
          "ivig": "1426680", "rituximab": "121191", "mycophenolate_mofetil": "68149"}
UNRELATED = ("J45.909", "Unspecified asthma, uncomplicated")

# Share of each planted category (of N); background children fill the rest. At least one
# child of each category is planted whatever N is.
CATEGORIES: dict[str, float] = {
    "dmd_confirmed": 0.004,
    "lgmd_confirmed": 0.002,
    "dystrophy_label_normal_ck": 0.002,
    "jdm": 0.002,
    "imnm_mislabelled_untested": 0.001,
    "myopathy_label_untested": 0.001,
    "imnm_mislabelled_positive": 0.001,
    "imnm_treated": 0.001,
    "imnm_corticosteroid_alone": 0.001,
    "imnm_corticosteroid_recent": 0.0005,
}
EXPECTED: dict[str, tuple[str, ...]] = {
    "background": (),
    "dmd_confirmed": (),
    "lgmd_confirmed": (),
    "dystrophy_label_normal_ck": (),
    "jdm": (),
    "imnm_mislabelled_untested": ("test_for_antibodies",),
    "myopathy_label_untested": ("test_for_antibodies",),
    "imnm_mislabelled_positive": ("review_dystrophy_label",),
    "imnm_treated": (),
    "imnm_corticosteroid_alone": ("review_treatment",),
    "imnm_corticosteroid_recent": (),
}


@dataclass
class Lab:
    """A laboratory result."""

    loinc: str
    date: dt.date
    value: float | None = None
    unit: str | None = None
    high: float | None = None
    answer: str | None = None  # "Positive" / "Negative"


@dataclass
class Child:
    """One synthetic child, before it is written as OMOP or FHIR."""

    person_id: int
    category: str
    sex: str
    birth: dt.date
    conditions: list[tuple[str, str, dt.date]] = field(default_factory=list)  # icd, name, date
    labs: list[Lab] = field(default_factory=list)
    drugs: list[tuple[str, dt.date, dt.date]] = field(default_factory=list)  # drug, start, end


def _days(rng: random.Random, low: int, high: int) -> dt.timedelta:
    return dt.timedelta(days=rng.randint(low, high))


def _child(person_id: int, category: str, rng: random.Random) -> Child:
    sex = "male" if category == "dmd_confirmed" else rng.choice(("female", "male"))
    age_days = rng.randint(2 * 365, 17 * 365)
    birth = AS_OF - dt.timedelta(days=age_days)
    c = Child(person_id, category, sex, birth)
    seen = AS_OF - _days(rng, 30, min(900, age_days - 400))
    uln = 499.0 if sex == "male" else 391.0

    def ck(low: float, high: float, when: dt.date = seen) -> None:
        c.labs.append(Lab(CK_LOINC, when, round(rng.uniform(low, high)), "U/L", uln))

    def antibody(loinc: str, answer: str, when: dt.date) -> None:
        c.labs.append(Lab(loinc, when, answer=answer))

    if category == "background":
        roll = rng.random()
        if roll < 0.15:
            c.conditions.append((*UNRELATED, seen))
        elif roll < 0.20:
            ck(60, uln - 1)
        elif roll < 0.205:
            ck(uln * 1.5, uln * 6)  # raised CK after exercise, no label: never listed
    elif category == "dmd_confirmed":
        c.conditions.append(("G71.01", "Duchenne or Becker muscular dystrophy", seen))
        ck(8000, 30000)
        c.labs.append(Lab(GENETIC_LOINC, seen, answer="Positive"))
        c.drugs.append(("prednisone", seen, AS_OF))
    elif category == "lgmd_confirmed":
        code = rng.choice(("G71.032", "G71.033", "G71.0341", "G71.035"))
        c.conditions.append((code, "Limb girdle muscular dystrophy", seen))
        ck(1000, 8000)
        c.labs.append(Lab(GENETIC_LOINC, seen, answer="Positive"))
    elif category == "dystrophy_label_normal_ck":
        c.conditions.append(("G71.00", "Muscular dystrophy, unspecified", seen))
        ck(50, uln - 1)
    elif category == "jdm":
        c.conditions.append(("M33.02", "Juvenile dermatomyositis with myopathy", seen))
        ck(uln * 1.2, 3000)
        c.drugs += [("prednisolone", seen, AS_OF), ("methotrexate", seen, AS_OF)]
    elif category in ("imnm_mislabelled_untested", "myopathy_label_untested"):
        label = (rng.choice((("G71.039", "Limb girdle muscular dystrophy, unspecified"),
                             ("G71.00", "Muscular dystrophy, unspecified")))
                 if category == "imnm_mislabelled_untested"
                 else ("G72.9", "Myopathy, unspecified"))
        c.conditions.append((*label, seen - _days(rng, 200, 900)))
        ck(3000, 25000)
        if rng.random() < 0.5:
            c.labs.append(Lab(GENETIC_LOINC, seen, answer="Negative"))
    elif category == "imnm_mislabelled_positive":
        c.conditions.append(("G71.039", "Limb girdle muscular dystrophy, unspecified",
                             seen - _days(rng, 200, 900)))
        ck(4000, 25000)
        antibody(rng.choice((HMGCR_LOINC, SRP_LOINC)), "Positive", seen)
        c.drugs += [("prednisolone", seen, AS_OF), ("methotrexate", seen, AS_OF)]
    else:  # IMNM correctly labelled
        c.conditions.append(("G72.49", "Other inflammatory and immune myopathies", seen))
        ck(4000, 25000)
        positive = rng.choice((HMGCR_LOINC, SRP_LOINC))
        antibody(positive, "Positive", seen)
        antibody(SRP_LOINC if positive == HMGCR_LOINC else HMGCR_LOINC, "Negative", seen)
        if category == "imnm_treated":
            second = "ivig" if positive == HMGCR_LOINC else "rituximab"
            c.drugs += [("prednisolone", seen, AS_OF), ("methotrexate", seen, AS_OF),
                        (second, seen + dt.timedelta(days=14), seen + dt.timedelta(days=28))]
        elif category == "imnm_corticosteroid_alone":
            start = AS_OF - _days(rng, 120, 360)
            c.drugs.append(("prednisolone", start, AS_OF))
        else:  # recent: 4-8 weeks on corticosteroid alone
            start = AS_OF - _days(rng, 28, 56)
            c.drugs.append(("prednisolone", start, AS_OF))
    return c


def population(n: int, seed: int) -> Iterator[Child]:
    """``n`` children, the same for the same seed."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    counts = {cat: max(1, round(share * n)) for cat, share in CATEGORIES.items()}
    planted = sum(counts.values())
    if planted > n:
        raise ValueError(f"patients: got {n}; expected at least {planted} to hold one child "
                         "of every category")
    categories = [cat for cat, k in counts.items() for _ in range(k)]
    categories += ["background"] * (n - planted)
    rng.shuffle(categories)
    for index, category in enumerate(categories, start=1):
        yield _child(index, category, rng)


# --------------------------------------------------------------------------- OMOP


def write_omop(children: Iterator[Child], path: Path) -> int:
    """Write OMOP CDM v5.4 tables (and imnm_truth) to a DuckDB file, or to a folder of Parquet
    files when ``path`` does not end in .duckdb; return the number of children."""
    if path.suffix != ".duckdb":
        import duckdb

        path.mkdir(parents=True, exist_ok=True)
        scratch = path / ".imnm-synth.duckdb"
        n = write_omop(children, scratch)
        con = duckdb.connect(str(scratch), read_only=True)
        try:
            for (table,) in con.execute("SHOW TABLES").fetchall():
                target = str(path / f"{table}.parquet").replace("'", "''")
                con.execute(f"COPY {table} TO '{target}' (FORMAT parquet)")
        finally:
            con.close()
            scratch.unlink()
        return n
    import duckdb
    import pyarrow as pa

    concepts: dict[tuple[str, str], tuple[int, str]] = {}

    def concept(vocabulary: str, code: str, name: str) -> int:
        key = (vocabulary, code)
        if key not in concepts:
            concepts[key] = (2_000_000_000 + len(concepts), name)
        return concepts[key][0]

    unit_ul = concept("UCUM", "U/L", "unit per liter")
    answers = {"Positive": concept("Meas Value", "positive", "Positive"),
               "Negative": concept("Meas Value", "negative", "Negative")}
    names = {CK_LOINC: "Creatine kinase", HMGCR_LOINC: "HMG-CoA reductase Ab",
             SRP_LOINC: "Signal recognition particle Ab", GENETIC_LOINC: "Genetic analysis"}
    person: dict[str, list[object]] = {k: [] for k in (
        "person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth")}
    cond: dict[str, list[object]] = {k: [] for k in (
        "condition_occurrence_id", "person_id", "condition_concept_id",
        "condition_source_concept_id", "condition_start_date")}
    meas: dict[str, list[object]] = {k: [] for k in (
        "measurement_id", "person_id", "measurement_concept_id", "measurement_date",
        "value_as_number", "value_as_concept_id", "unit_concept_id", "unit_source_value",
        "range_high")}
    drug: dict[str, list[object]] = {k: [] for k in (
        "drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
        "drug_exposure_end_date")}
    truth: dict[str, list[object]] = {"person_id": [], "category": [], "expected_tiers": []}
    n = 0
    for child in children:
        n += 1
        person["person_id"].append(child.person_id)
        person["gender_concept_id"].append(8507 if child.sex == "male" else 8532)
        person["year_of_birth"].append(child.birth.year)
        person["month_of_birth"].append(child.birth.month)
        person["day_of_birth"].append(child.birth.day)
        truth["person_id"].append(child.person_id)
        truth["category"].append(child.category)
        truth["expected_tiers"].append(";".join(EXPECTED[child.category]))
        for code, name, when in child.conditions:
            cid = concept("ICD10CM", code, name)
            cond["condition_occurrence_id"].append(len(cond["person_id"]) + 1)
            cond["person_id"].append(child.person_id)
            cond["condition_concept_id"].append(0)
            cond["condition_source_concept_id"].append(cid)
            cond["condition_start_date"].append(when)
        for lab in child.labs:
            meas["measurement_id"].append(len(meas["person_id"]) + 1)
            meas["person_id"].append(child.person_id)
            meas["measurement_concept_id"].append(concept("LOINC", lab.loinc, names[lab.loinc]))
            meas["measurement_date"].append(lab.date)
            meas["value_as_number"].append(lab.value)
            meas["value_as_concept_id"].append(answers[lab.answer] if lab.answer else None)
            meas["unit_concept_id"].append(unit_ul if lab.unit else None)
            meas["unit_source_value"].append(lab.unit)
            meas["range_high"].append(lab.high)
        for name, start, end in child.drugs:
            drug["drug_exposure_id"].append(len(drug["person_id"]) + 1)
            drug["person_id"].append(child.person_id)
            drug["drug_concept_id"].append(concept("RxNorm", RXNORM[name], name))
            drug["drug_exposure_start_date"].append(start)
            drug["drug_exposure_end_date"].append(end)
    concept_table = {
        "concept_id": [v[0] for v in concepts.values()],
        "concept_name": [v[1] for v in concepts.values()],
        "vocabulary_id": [k[0] for k in concepts],
        "concept_code": [k[1] for k in concepts],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for name, columns in (("person", person), ("condition_occurrence", cond),
                              ("measurement", meas), ("drug_exposure", drug),
                              ("concept", concept_table), ("imnm_truth", truth)):
            con.register("staged_columns", pa.table(columns))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM staged_columns")  # noqa: S608
            con.unregister("staged_columns")
        con.execute("ALTER TABLE measurement ALTER range_high TYPE DOUBLE")
    finally:
        con.close()
    tmp.replace(path)
    return n


# --------------------------------------------------------------------------- FHIR


def _fhir_lines(child: Child, knowledge: Knowledge) -> dict[str, list[dict[str, object]]]:
    pid = str(child.person_id)
    ref = {"reference": f"Patient/{pid}"}
    out: dict[str, list[dict[str, object]]] = {
        "Patient": [{"resourceType": "Patient", "id": pid, "gender": child.sex,
                     "birthDate": child.birth.isoformat()}],
        "Condition": [], "Observation": [], "MedicationRequest": [],
    }
    for i, (code, name, when) in enumerate(child.conditions):
        out["Condition"].append({
            "resourceType": "Condition", "id": f"{pid}-c{i}", "subject": ref,
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code,
                                 "display": name}]},
            "onsetDateTime": when.isoformat()})
    for i, lab in enumerate(child.labs):
        obs: dict[str, object] = {
            "resourceType": "Observation", "id": f"{pid}-o{i}", "status": "final",
            "subject": ref, "effectiveDateTime": f"{lab.date.isoformat()}T09:00:00Z",
            "code": {"coding": [{"system": "http://loinc.org", "code": lab.loinc}]}}
        if lab.value is not None:
            obs["valueQuantity"] = {"value": lab.value, "unit": lab.unit,
                                    "system": "http://unitsofmeasure.org", "code": lab.unit}
            if lab.high is not None:
                obs["referenceRange"] = [{"high": {"value": lab.high, "unit": lab.unit}}]
        if lab.answer is not None:
            obs["valueCodeableConcept"] = {"coding": [answer_coding(knowledge,
                                                                    lab.answer.lower())]}
        out["Observation"].append(obs)
    for i, (name, start, end) in enumerate(child.drugs):
        out["MedicationRequest"].append({
            "resourceType": "MedicationRequest", "id": f"{pid}-m{i}", "status": "active",
            "intent": "order", "subject": ref, "authoredOn": start.isoformat(),
            "medicationCodeableConcept": {"coding": [{
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": RXNORM[name], "display": name}]},
            "dispenseRequest": {"validityPeriod": {"start": start.isoformat(),
                                                   "end": end.isoformat()}}})
    return out


def write_fhir(children: Iterator[Child], directory: Path, *, gzip_files: bool = False) -> int:
    """Write bulk-export NDJSON (one file per resource type) and truth.csv; return the count."""
    knowledge = load_knowledge()
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if gzip_files else ".ndjson"
    names = ("Patient", "Condition", "Observation", "MedicationRequest")
    handles = {}
    for name in names:
        path = directory / f"{name}.000{suffix}"
        handles[name] = (gzip.open(path, "wt", encoding="utf-8") if gzip_files
                         else path.open("w", encoding="utf-8"))
    n = 0
    try:
        with (directory / "truth.csv").open("w", encoding="utf-8") as truth:
            truth.write("person_id,category,expected_tiers\n")
            for child in children:
                n += 1
                truth.write(f"{child.person_id},{child.category},"
                            f"{';'.join(EXPECTED[child.category])}\n")
                for name, resources in _fhir_lines(child, knowledge).items():
                    for resource in resources:
                        handles[name].write(json.dumps(resource, separators=(",", ":")) + "\n")
    finally:
        for handle in handles.values():
            handle.close()
    return n
