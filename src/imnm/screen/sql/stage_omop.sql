-- imnm screen, staging from OMOP CDM v5.4 (DuckDB dialect; transpiled to Spark SQL).
-- Reads: person, concept, condition_occurrence, measurement, drug_exposure (see sources.py).
-- Writes the four canonical views the screen reads: imnm_person, imnm_condition,
-- imnm_measurement, imnm_drug. Codes come from CONCEPT (vocabulary_id + concept_code) for
-- both the standard and the source concept of each row.
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
WHERE p.year_of_birth IS NOT NULL;

CREATE OR REPLACE TEMPORARY VIEW imnm_condition AS
WITH coded AS (
    SELECT person_id, condition_concept_id AS concept_id, condition_start_date
    FROM condition_occurrence
    UNION
    SELECT person_id, condition_source_concept_id AS concept_id, condition_start_date
    FROM condition_occurrence
    WHERE condition_source_concept_id IS NOT NULL
)
SELECT DISTINCT
    CAST(co.person_id AS VARCHAR) AS person_id,
    v.system AS system,
    c.concept_code AS code,
    CAST(co.condition_start_date AS DATE) AS start_date,
    TRUE AS active
FROM coded AS co
JOIN concept AS c ON c.concept_id = co.concept_id
JOIN imnm_vocabulary AS v ON v.vocabulary_id = c.vocabulary_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_measurement AS
SELECT
    CAST(m.person_id AS VARCHAR) AS person_id,
    v.system AS system,
    c.concept_code AS code,
    CAST(m.value_as_number AS DOUBLE) AS value,
    COALESCE(m.unit_source_value, u.concept_code) AS unit,
    CAST(m.range_high AS DOUBLE) AS range_high,
    CASE
        WHEN LOWER(r.concept_name) IN ('positive', 'detected', 'present') THEN 'positive'
        WHEN LOWER(r.concept_name) IN ('negative', 'not detected', 'absent') THEN 'negative'
        ELSE NULL
    END AS result,
    CAST(m.measurement_date AS DATE) AS date
FROM measurement AS m
JOIN concept AS c ON c.concept_id = m.measurement_concept_id
JOIN imnm_vocabulary AS v ON v.vocabulary_id = c.vocabulary_id
LEFT JOIN concept AS u ON u.concept_id = m.unit_concept_id
LEFT JOIN concept AS r ON r.concept_id = m.value_as_concept_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_drug AS
SELECT
    CAST(d.person_id AS VARCHAR) AS person_id,
    v.system AS system,
    c.concept_code AS code,
    CAST(d.drug_exposure_start_date AS DATE) AS start_date,
    CAST(d.drug_exposure_end_date AS DATE) AS end_date
FROM drug_exposure AS d
JOIN concept AS c ON c.concept_id = d.drug_concept_id
JOIN imnm_vocabulary AS v ON v.vocabulary_id = c.vocabulary_id;
