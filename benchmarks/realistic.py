"""A realistic pediatric OMOP database for the screen's benchmark, built inside DuckDB.

Real pediatric OMOP databases hold about 60 measurement rows per child (p90 about 140), of
which CK is well under 1 %, about 10 condition rows and 5 drug rows per child, and millions of
concept rows (issue 14). imnm's synthetic generator (`imnm.screen.synth`) writes children coded
as real sites code them, with a ground truth per child, but in Python and sparsely. So:

1. ``planted`` children (default 30,000: about 120 in a tier and 340 decoys, the categories of
   `synth.CATEGORIES`) come from `synth`, with their vocabulary subset and `imnm_truth`;
2. every other child is generated here in SQL: sex, birth date, a number of measurements drawn
   between 20 and 100 (mean 60) of which 0.5 % are a normal CK in U/L, 2-18 conditions and
   0-10 drug exposures, all on filler concepts that are in no imnm code set;
3. the vocabulary is padded to ``concepts`` rows (default 3,000,000) with filler concepts, a
   CONCEPT_ANCESTOR row for each and an 'Is a' hierarchy over a third of them.

Used by benchmarks/screen.py; run alone to write one file:

    .venv/bin/python benchmarks/realistic.py 1000000 /tmp/omop-1m.duckdb
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILLER = 10_000_000  # filler concept ids start here, far from any Athena id in the subset
CK_CONCEPT = 3007220  # LOINC 2157-6, creatine kinase (as synth codes it)
U_PER_L = 8645  # Athena's [U]/L unit concept


def build(children: int, path: Path, *, planted: int = 30_000, concepts: int = 3_000_000,
          seed: int = 42) -> dict[str, float]:
    """Write the database to ``path`` (a DuckDB file); return its row counts and the time."""
    import duckdb

    sys.path.insert(0, str(ROOT / "src"))
    from imnm.screen import synth

    start = time.perf_counter()
    planted = min(planted, children)
    with tempfile.TemporaryDirectory() as folder:
        seeds = Path(folder) / "planted.duckdb"
        synth.write_omop(synth.population(planted, seed), seeds)
        path.unlink(missing_ok=True)
        con = duckdb.connect(str(path))
        con.execute(f"ATTACH '{seeds}' AS p (READ_ONLY)")
        for table in ("person", "measurement", "condition_occurrence", "drug_exposure",
                      "concept", "concept_ancestor", "concept_relationship", "imnm_truth"):
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM p.{table}")
        con.execute("DETACH p")
    background = children - planted
    first = planted + 1
    con.execute(f"""
        INSERT INTO person BY NAME
        SELECT {first} + i AS person_id,
               CASE WHEN hash(i, 1) % 2 = 0 THEN 8507 ELSE 8532 END AS gender_concept_id,
               2004 + CAST(hash(i, 2) % 21 AS INTEGER) AS year_of_birth,
               1 + CAST(hash(i, 3) % 12 AS INTEGER) AS month_of_birth,
               1 + CAST(hash(i, 4) % 28 AS INTEGER) AS day_of_birth
        FROM range({background}) AS t(i)""")
    con.execute(f"""
        INSERT INTO measurement BY NAME
        WITH people AS (
            SELECT {first} + i AS person_id, 20 + CAST(hash(i, 5) % 81 AS INTEGER) AS k
            FROM range({background}) AS t(i)
        ), rows AS (
            SELECT person_id, j, hash(person_id, j) AS h
            FROM people, LATERAL (SELECT * FROM range(k) AS r(j))
        )
        SELECT 100000000 + row_number() OVER () AS measurement_id, person_id,
               CASE WHEN h % 200 = 0 THEN {CK_CONCEPT}
                    ELSE {FILLER} + CAST(h % 5000 AS BIGINT) END AS measurement_concept_id,
               DATE '2012-01-01' + CAST(h % 4900 AS INTEGER) AS measurement_date,
               CASE WHEN h % 200 = 0 THEN 40 + CAST(h % 140 AS DOUBLE)
                    ELSE CAST(h % 1000 AS DOUBLE) / 10 END AS value_as_number,
               CASE WHEN h % 200 = 0 THEN {U_PER_L} ELSE 0 END AS unit_concept_id,
               CASE WHEN h % 400 = 0 THEN 'U/L' ELSE NULL END AS unit_source_value,
               CASE WHEN h % 200 = 0 THEN 200.0 ELSE NULL END AS range_high
        FROM rows""")
    con.execute(f"""
        INSERT INTO condition_occurrence BY NAME
        WITH people AS (
            SELECT {first} + i AS person_id, 2 + CAST(hash(i, 6) % 17 AS INTEGER) AS k
            FROM range({background}) AS t(i)
        )
        SELECT 100000000 + row_number() OVER () AS condition_occurrence_id, person_id,
               {FILLER} + 5000 + CAST(hash(person_id, j, 7) % 20000 AS BIGINT)
                   AS condition_concept_id,
               0 AS condition_source_concept_id,
               DATE '2012-01-01' + CAST(hash(person_id, j, 9) % 4900 AS INTEGER)
                   AS condition_start_date
        FROM people, LATERAL (SELECT * FROM range(k) AS r(j))""")
    con.execute(f"""
        INSERT INTO drug_exposure BY NAME
        WITH people AS (
            SELECT {first} + i AS person_id, CAST(hash(i, 10) % 11 AS INTEGER) AS k
            FROM range({background}) AS t(i)
        )
        SELECT 100000000 + row_number() OVER () AS drug_exposure_id, person_id,
               {FILLER} + 45000 + CAST(hash(person_id, j, 11) % 10000 AS BIGINT)
                   AS drug_concept_id,
               0 AS drug_source_concept_id,
               DATE '2012-01-01' + CAST(hash(person_id, j, 12) % 4900 AS INTEGER)
                   AS drug_exposure_start_date,
               DATE '2012-01-01' + CAST(hash(person_id, j, 12) % 4900 AS INTEGER) + 30
                   AS drug_exposure_end_date
        FROM people, LATERAL (SELECT * FROM range(k) AS r(j))""")
    con.execute(f"""
        INSERT INTO concept BY NAME
        SELECT {FILLER} + k AS concept_id, 'filler concept ' || k AS concept_name,
               'Filler' AS vocabulary_id, 'Filler' AS concept_class_id,
               'S' AS standard_concept, 'F' || k AS concept_code
        FROM range({concepts}) AS t(k)""")
    con.execute(f"""
        INSERT INTO concept_ancestor BY NAME
        SELECT {FILLER} + k AS ancestor_concept_id, {FILLER} + k AS descendant_concept_id
        FROM range({concepts}) AS t(k)""")
    con.execute(f"""
        INSERT INTO concept_relationship BY NAME
        SELECT {FILLER} + k AS concept_id_1, {FILLER} + k // 10 AS concept_id_2,
               'Is a' AS relationship_id
        FROM range(10, {concepts // 3}) AS t(k)""")
    counts = {table: float(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # type: ignore[index]
              for table in ("person", "measurement", "condition_occurrence", "drug_exposure",
                            "concept", "concept_ancestor", "concept_relationship")}
    con.execute("CHECKPOINT")
    con.close()
    return counts | {"seconds": time.perf_counter() - start,
                     "bytes": float(path.stat().st_size)}


if __name__ == "__main__":
    figures = build(int(sys.argv[1]), Path(sys.argv[2]))
    print({k: int(v) if k != "seconds" else round(v, 1) for k, v in figures.items()})
