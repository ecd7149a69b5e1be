-- imnm screen, staging from OMOP CDM v5.4 (DuckDB dialect; transpiled to Spark SQL).
-- Reads: person, concept, concept_ancestor, concept_relationship, condition_occurrence,
-- measurement, drug_exposure (see sources.py; the two hierarchy tables may be empty).
-- Writes the canonical views the screen reads (imnm_person, imnm_condition,
-- imnm_measurement, imnm_drug), each holding only rows that fall in an imnm code set, and
-- imnm_coverage: what the screen read, used, and could not read.
--
-- Code sets follow the OHDSI convention of concept sets with descendants:
--   1. the code sets' own codes, found in CONCEPT by vocabulary and code (and the OMOP ids of
--      results.toml's drug products);
--   2. their descendants in CONCEPT_ANCESTOR;
--   3. where CONCEPT_ANCESTOR is empty or partial, up to three steps down CONCEPT_RELATIONSHIP
--      ('Maps to', 'Consists of', 'RxNorm has ing', 'Is a', 'Tradename of': every concept
--      that maps to, consists of, has as ingredient, is a kind of, or is a trade name of a
--      member is a member);
--   4. the standard concept a non-standard code (ICD-10-CM) maps to ('Maps to').
-- Each row is matched on its standard concept and on its source concept.
-- Birth date: year_of_birth with month and day when recorded; a missing month or day is
-- taken as 1 July / the 1st (a convention that keeps the age error under six months).

CREATE OR REPLACE TEMPORARY VIEW imnm_person AS
SELECT
    CAST(p.person_id AS VARCHAR) AS person_id,
    MAKE_DATE(CAST(p.year_of_birth AS INTEGER),
              CAST(COALESCE(p.month_of_birth, 7) AS INTEGER),
              CAST(COALESCE(p.day_of_birth, 1) AS INTEGER)) AS birth_date,
    CASE p.gender_concept_id WHEN 8507 THEN 'male' WHEN 8532 THEN 'female' ELSE 'unknown' END
        AS sex
FROM person AS p
WHERE p.year_of_birth IS NOT NULL AND p.person_id IS NOT NULL;

CREATE OR REPLACE TEMPORARY VIEW imnm_set_roots AS
SELECT k.set_name, k.concept, c.concept_id, 0 AS how_rank
FROM imnm_codes AS k
JOIN imnm_vocabulary AS v ON v.system = k.system
JOIN concept AS c ON c.vocabulary_id = v.vocabulary_id AND c.concept_code = k.code
WHERE k.match_kind = 'exact'
UNION ALL
SELECT k.set_name, k.concept, c.concept_id, 0 AS how_rank
FROM imnm_codes AS k
JOIN imnm_vocabulary AS v ON v.system = k.system
JOIN concept AS c ON c.vocabulary_id = v.vocabulary_id
WHERE k.match_kind = 'prefix' AND SUBSTR(c.concept_code, 1, LENGTH(k.code)) = k.code
UNION ALL
SELECT 'drug' AS set_name, p.concept, p.concept_id, 0 AS how_rank
FROM imnm_product_concepts AS p;

-- Each hop down CONCEPT_RELATIONSHIP joins the table to the few concepts found so far, so
-- the engine probes it with a small build side; the hierarchy rows of a full vocabulary
-- (millions) are never gathered into one intermediate result. The hops repeat the join on
-- purpose: a shared CTE is materialized when read three times (DuckDB, PostgreSQL), and a
-- shared view becomes a temporary table in the scripts emitted for BigQuery, Redshift and
-- T-SQL.
CREATE OR REPLACE TEMPORARY VIEW imnm_set_members AS
WITH hop1 AS (
    SELECT x.set_name, x.concept, r.concept_id_1 AS concept_id
    FROM imnm_set_roots AS x
    JOIN concept_relationship AS r ON r.concept_id_2 = x.concept_id
    JOIN imnm_hierarchy AS h ON h.relationship_id = r.relationship_id
    WHERE r.concept_id_1 <> r.concept_id_2
),
hop2 AS (
    SELECT x.set_name, x.concept, r.concept_id_1 AS concept_id
    FROM hop1 AS x
    JOIN concept_relationship AS r ON r.concept_id_2 = x.concept_id
    JOIN imnm_hierarchy AS h ON h.relationship_id = r.relationship_id
    WHERE r.concept_id_1 <> r.concept_id_2
),
hop3 AS (
    SELECT x.set_name, x.concept, r.concept_id_1 AS concept_id
    FROM hop2 AS x
    JOIN concept_relationship AS r ON r.concept_id_2 = x.concept_id
    JOIN imnm_hierarchy AS h ON h.relationship_id = r.relationship_id
    WHERE r.concept_id_1 <> r.concept_id_2
),
descendants AS (
    SELECT x.set_name, x.concept, a.descendant_concept_id AS concept_id
    FROM imnm_set_roots AS x
    JOIN concept_ancestor AS a ON a.ancestor_concept_id = x.concept_id
),
mapped AS (
    SELECT x.set_name, x.concept, r.concept_id_2 AS concept_id
    FROM imnm_set_roots AS x
    JOIN concept_relationship AS r ON r.concept_id_1 = x.concept_id
    WHERE r.relationship_id = 'Maps to' AND r.concept_id_2 <> x.concept_id
),
found AS (
    SELECT set_name, concept, concept_id, how_rank FROM imnm_set_roots
    UNION ALL
    SELECT set_name, concept, concept_id, 1 AS how_rank FROM descendants
    UNION ALL
    SELECT set_name, concept, concept_id, 2 AS how_rank FROM hop1
    UNION ALL
    SELECT set_name, concept, concept_id, 2 AS how_rank FROM hop2
    UNION ALL
    SELECT set_name, concept, concept_id, 2 AS how_rank FROM hop3
    UNION ALL
    SELECT set_name, concept, concept_id, 3 AS how_rank FROM mapped
)
SELECT f.set_name, f.concept, f.concept_id,
       CASE MIN(f.how_rank) WHEN 0 THEN 'code' WHEN 1 THEN 'concept_ancestor'
            WHEN 2 THEN 'concept_relationship' ELSE 'maps_to' END AS how
FROM found AS f
WHERE f.concept_id IS NOT NULL AND f.concept_id <> 0
GROUP BY f.set_name, f.concept, f.concept_id;

-- Each member's code, looked up once the members are computed: the engine then knows there
-- are a few hundred and probes CONCEPT with them (DuckDB at 3 million concepts: 1 ms, against
-- 9 ms when the lookup was part of the expansion, whose size it could not foresee).
CREATE OR REPLACE TEMPORARY VIEW imnm_set_concepts AS
SELECT m.set_name, m.concept, m.concept_id, m.how,
       COALESCE(MIN(c.concept_code), CAST(m.concept_id AS VARCHAR)) AS code
FROM imnm_set_members AS m
LEFT JOIN concept AS c ON c.concept_id = m.concept_id
GROUP BY m.set_name, m.concept, m.concept_id, m.how;

-- Only the rows in a code set are de-duplicated (a row matched on both its concepts).
CREATE OR REPLACE TEMPORARY VIEW imnm_condition AS
WITH hits AS (
    SELECT co.person_id, s.set_name, s.concept, s.code, co.condition_start_date AS start_date
    FROM condition_occurrence AS co
    JOIN imnm_set_concepts AS s ON s.concept_id = co.condition_concept_id
    WHERE s.set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis')
    UNION ALL
    SELECT co.person_id, s.set_name, s.concept, s.code, co.condition_start_date AS start_date
    FROM condition_occurrence AS co
    JOIN imnm_set_concepts AS s ON s.concept_id = co.condition_source_concept_id
    WHERE s.set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis')
)
SELECT DISTINCT
    CAST(h.person_id AS VARCHAR) AS person_id,
    h.set_name,
    h.concept,
    h.code,
    h.start_date,
    TRUE AS active
FROM hits AS h;

-- The measurement rows in a code set, read three times below: through a CTE, which DuckDB
-- and PostgreSQL compute once, and staged on Spark, which would compute a CTE again at each
-- use (imnm.screen.run.STAGED_WHERE_CTES_INLINE).
CREATE OR REPLACE TEMPORARY VIEW imnm_measurement_hits AS
SELECT m.person_id, s.set_name, s.concept, s.code,
       m.value_as_number AS value, m.value_as_concept_id, m.unit_concept_id,
       LOWER(NULLIF(TRIM(m.unit_source_value), '')) AS unit_source,
       m.range_high,
       LOWER(NULLIF(TRIM(m.value_source_value), '')) AS value_text,
       m.measurement_date AS date
FROM measurement AS m
JOIN imnm_set_concepts AS s ON s.concept_id = m.measurement_concept_id
WHERE s.set_name IN ('ck', 'antibody_test', 'genetic_test');

-- The unit and answer concepts of the matching rows only, looked up in CONCEPT once: the
-- lookups then join a few rows, never the whole vocabulary.
CREATE OR REPLACE TEMPORARY VIEW imnm_measurement AS
WITH hits AS (
    SELECT * FROM imnm_measurement_hits
),
looked_up AS (
    SELECT c.concept_id, c.concept_code, c.vocabulary_id, c.concept_name
    FROM concept AS c
    WHERE c.concept_id IN (
        SELECT unit_concept_id FROM hits WHERE unit_concept_id IS NOT NULL
        UNION
        SELECT value_as_concept_id FROM hits WHERE value_as_concept_id IS NOT NULL)
),
coded AS (
    SELECT
        h.*,
        COALESCE(fs.unit, fc.unit) AS unit,
        COALESCE(fs.factor, fc.factor) AS factor,
        COALESCE(vc.answer, ac.answer, wn.answer, wt.answer) AS coded_answer
    FROM hits AS h
    LEFT JOIN imnm_unit_factors AS fs ON fs.spelling = h.unit_source
    LEFT JOIN looked_up AS u ON u.concept_id = h.unit_concept_id
    LEFT JOIN imnm_unit_factors AS fc ON fc.spelling = LOWER(u.concept_code)
    LEFT JOIN imnm_value_concepts AS vc ON vc.concept_id = h.value_as_concept_id
    LEFT JOIN looked_up AS r ON r.concept_id = h.value_as_concept_id
    LEFT JOIN imnm_vocabulary AS rv ON rv.vocabulary_id = r.vocabulary_id
    LEFT JOIN imnm_answer_codes AS ac ON ac.system = rv.system AND ac.code = r.concept_code
    LEFT JOIN imnm_answer_words AS wn ON wn.text = LOWER(TRIM(r.concept_name))
    LEFT JOIN imnm_answer_words AS wt ON wt.text = h.value_text
)
SELECT
    CAST(person_id AS VARCHAR) AS person_id,
    set_name,
    concept,
    code,
    CAST(value AS DOUBLE) AS value,
    unit,
    factor,
    CAST(range_high AS DOUBLE) AS range_high,
    CASE
        WHEN set_name = 'ck' THEN NULL
        WHEN coded_answer IS NOT NULL THEN coded_answer
        WHEN value IS NOT NULL AND range_high IS NOT NULL AND value > range_high
            THEN 'positive'
        WHEN value IS NOT NULL AND range_high IS NOT NULL THEN 'negative'
    END AS result,
    CASE
        WHEN set_name = 'ck' THEN NULL
        WHEN coded_answer IS NOT NULL THEN 'coded'
        WHEN value IS NOT NULL AND range_high IS NOT NULL THEN 'reference_range'
    END AS result_basis,
    date
FROM coded;

CREATE OR REPLACE TEMPORARY VIEW imnm_drug AS
WITH hits AS (
    SELECT d.person_id, s.concept, s.code, s.how,
           d.drug_exposure_start_date AS start_date, d.drug_exposure_end_date AS end_date
    FROM drug_exposure AS d
    JOIN imnm_set_concepts AS s ON s.concept_id = d.drug_concept_id
    WHERE s.set_name = 'drug'
    UNION ALL
    SELECT d.person_id, s.concept, s.code, s.how,
           d.drug_exposure_start_date AS start_date, d.drug_exposure_end_date AS end_date
    FROM drug_exposure AS d
    JOIN imnm_set_concepts AS s ON s.concept_id = d.drug_source_concept_id
    WHERE s.set_name = 'drug' AND d.drug_source_concept_id <> d.drug_concept_id
)
SELECT
    CAST(h.person_id AS VARCHAR) AS person_id,
    h.concept,
    h.code,
    h.how,
    h.start_date,
    h.end_date
FROM hits AS h;
