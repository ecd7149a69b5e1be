-- lookup views rendered from the knowledge files (imnm.screen.definition)

CREATE OR REPLACE TEMPORARY VIEW imnm_params AS
SELECT * FROM (VALUES
    (CAST('2025-06-30' AS DATE), 25.0, 1.0, 84)
) AS v(as_of, max_age_years, min_ck_multiple, review_days);

CREATE OR REPLACE TEMPORARY VIEW imnm_codes AS
SELECT * FROM (VALUES
    ('dystrophy', 'icd10cm', 'G71.00', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.01', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.02', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.031', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.032', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.033', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.0340', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.0341', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.0342', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.0349', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.035', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.038', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.039', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.09', 'exact', NULL, 'code'),
    ('dystrophy', 'icd10cm', 'G71.0', 'prefix', NULL, 'code'),
    ('dystrophy', 'snomedct', '73297009', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '76670001', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '387732009', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '399091004', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '240046001', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '240054004', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '240067001', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '78468005', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '715341003', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '718179003', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '718176005', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '715340002', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '718850008', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '719985001', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '718178006', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '77097004', 'exact', NULL, 'code'),
    ('dystrophy', 'snomedct', '58795000', 'exact', NULL, 'code'),
    ('myositis', 'icd10cm', 'M33.00', 'exact', 'jdm', 'code'),
    ('myositis', 'icd10cm', 'M33.01', 'exact', 'jdm', 'code'),
    ('myositis', 'icd10cm', 'M33.02', 'exact', 'jdm', 'code'),
    ('myositis', 'icd10cm', 'M33.03', 'exact', 'jdm', 'code'),
    ('myositis', 'icd10cm', 'M33.09', 'exact', 'jdm', 'code'),
    ('myositis', 'icd10cm', 'M33.20', 'exact', 'polymyositis', 'code'),
    ('myositis', 'icd10cm', 'M33.21', 'exact', 'polymyositis', 'code'),
    ('myositis', 'icd10cm', 'M33.22', 'exact', 'polymyositis', 'code'),
    ('myositis', 'icd10cm', 'M33.29', 'exact', 'polymyositis', 'code'),
    ('myositis', 'icd10cm', 'G72.41', 'exact', 'ibm', 'code'),
    ('myositis', 'icd10cm', 'G72.49', 'exact', 'imnm_or_other_inflammatory', 'code'),
    ('myositis', 'icd10cm', 'M33.1', 'prefix', 'dm', 'code'),
    ('myositis', 'icd10cm', 'M33.9', 'prefix', 'dm', 'code'),
    ('unexplained_myopathy', 'icd10cm', 'G72.9', 'exact', NULL, 'code'),
    ('unexplained_myopathy', 'icd10cm', 'G72.89', 'exact', NULL, 'code'),
    ('unexplained_myopathy', 'icd10cm', 'R74.8', 'exact', NULL, 'code'),
    ('ck', 'loinc', '2157-6', 'exact', 'ck', 'code'),
    ('antibody_test', 'loinc', '93493-5', 'exact', 'HMGCR', 'code'),
    ('antibody_test', 'loinc', '33921-8', 'exact', 'SRP', 'code'),
    ('antibody_test', 'loinc', '53011-3', 'exact', 'SRP', 'code'),
    ('genetic_test', 'loinc', '51969-4', 'exact', NULL, 'code'),
    ('drug', 'rxnorm', '8638', 'exact', 'prednisolone', 'ingredient'),
    ('drug', 'rxnorm', '8640', 'exact', 'prednisone', 'ingredient'),
    ('drug', 'rxnorm', '6902', 'exact', 'methylprednisolone', 'ingredient'),
    ('drug', 'rxnorm', '6851', 'exact', 'methotrexate', 'ingredient'),
    ('drug', 'rxnorm', '5666', 'exact', 'ivig', 'ingredient'),
    ('drug', 'rxnorm', '1426680', 'exact', 'ivig', 'ingredient'),
    ('drug', 'rxnorm', '121191', 'exact', 'rituximab', 'ingredient'),
    ('drug', 'rxnorm', '3002', 'exact', 'cyclophosphamide', 'ingredient'),
    ('drug', 'rxnorm', '1256', 'exact', 'azathioprine', 'ingredient'),
    ('drug', 'rxnorm', '68149', 'exact', 'mycophenolate_mofetil', 'ingredient'),
    ('drug', 'rxnorm', '7145', 'exact', 'mycophenolate_mofetil', 'ingredient'),
    ('drug', 'rxnorm', '42316', 'exact', 'tacrolimus', 'ingredient'),
    ('drug', 'rxnorm', '3008', 'exact', 'cyclosporine', 'ingredient'),
    ('drug', 'rxnorm', '83367', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '36567', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '301542', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '42463', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '6472', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '41127', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '861634', 'exact', 'statin', 'ingredient'),
    ('drug', 'rxnorm', '312617', 'exact', 'prednisone', 'product'),
    ('drug', 'rxnorm', '312615', 'exact', 'prednisone', 'product'),
    ('drug', 'rxnorm', '105585', 'exact', 'methotrexate', 'product'),
    ('drug', 'rxnorm', '105586', 'exact', 'methotrexate', 'product'),
    ('drug', 'rxnorm', '1734919', 'exact', 'cyclophosphamide', 'product'),
    ('drug', 'rxnorm', '241834', 'exact', 'cyclosporine', 'product'),
    ('drug', 'rxnorm', '835900', 'exact', 'cyclosporine', 'product'),
    ('drug', 'rxnorm', '259255', 'exact', 'statin', 'product'),
    ('drug', 'rxnorm', '312961', 'exact', 'statin', 'product'),
    ('drug', 'rxnorm', '314231', 'exact', 'statin', 'product'),
    ('drug', 'rxnorm', '316672', 'exact', 'statin', 'product')
) AS v(set_name, system, code, match_kind, concept, how);

CREATE OR REPLACE TEMPORARY VIEW imnm_product_concepts AS
SELECT * FROM (VALUES
    (1551192, 'prednisone'),
    (1551170, 'prednisone'),
    (19007332, 'methotrexate'),
    (19007333, 'methotrexate'),
    (35606514, 'cyclophosphamide'),
    (19010522, 'cyclosporine'),
    (19134077, 'cyclosporine'),
    (1545959, 'statin'),
    (1539411, 'statin'),
    (1539463, 'statin'),
    (1539464, 'statin')
) AS v(concept_id, concept);

CREATE OR REPLACE TEMPORARY VIEW imnm_hierarchy AS
SELECT * FROM (VALUES
    ('Maps to'),
    ('Consists of'),
    ('RxNorm has ing'),
    ('Is a'),
    ('Tradename of')
) AS v(relationship_id);

CREATE OR REPLACE TEMPORARY VIEW imnm_value_concepts AS
SELECT * FROM (VALUES
    (9191, 'positive'),
    (45884084, 'positive'),
    (4126681, 'positive'),
    (45877985, 'positive'),
    (4181412, 'positive'),
    (45879438, 'positive'),
    (9189, 'negative'),
    (45878583, 'negative'),
    (9190, 'negative')
) AS v(concept_id, answer);

CREATE OR REPLACE TEMPORARY VIEW imnm_answer_codes AS
SELECT * FROM (VALUES
    ('snomedct', '10828004', 'positive'),
    ('snomedct', '260385009', 'negative'),
    ('loinc', 'LA6576-8', 'positive'),
    ('loinc', 'LA6577-6', 'negative')
) AS v(system, code, answer);

CREATE OR REPLACE TEMPORARY VIEW imnm_interpretations AS
SELECT * FROM (VALUES
    ('POS', 'positive'),
    ('DET', 'positive'),
    ('H', 'positive'),
    ('HH', 'positive'),
    ('A', 'positive'),
    ('NEG', 'negative'),
    ('ND', 'negative'),
    ('N', 'negative')
) AS v(code, answer);

CREATE OR REPLACE TEMPORARY VIEW imnm_answer_words AS
SELECT * FROM (VALUES
    ('positive', 'positive'),
    ('pos', 'positive'),
    ('detected', 'positive'),
    ('present', 'positive'),
    ('positive (qualifier value)', 'positive'),
    ('negative', 'negative'),
    ('neg', 'negative'),
    ('not detected', 'negative'),
    ('absent', 'negative'),
    ('negative (qualifier value)', 'negative')
) AS v(text, answer);

CREATE OR REPLACE TEMPORARY VIEW imnm_drug_names AS
SELECT * FROM (VALUES
    ('atorvastatin', 'statin'),
    ('azathioprine', 'azathioprine'),
    ('cyclophosphamide', 'cyclophosphamide'),
    ('cyclosporine', 'cyclosporine'),
    ('fluvastatin', 'statin'),
    ('immunoglobulin g', 'ivig'),
    ('lovastatin', 'statin'),
    ('methotrexate', 'methotrexate'),
    ('methylprednisolone', 'methylprednisolone'),
    ('mycophenolate mofetil', 'mycophenolate_mofetil'),
    ('mycophenolic acid', 'mycophenolate_mofetil'),
    ('pitavastatin', 'statin'),
    ('pravastatin', 'statin'),
    ('prednisolone', 'prednisolone'),
    ('prednisone', 'prednisone'),
    ('rituximab', 'rituximab'),
    ('rosuvastatin', 'statin'),
    ('simvastatin', 'statin'),
    ('tacrolimus', 'tacrolimus')
) AS v(name, concept);

CREATE OR REPLACE TEMPORARY VIEW imnm_vocabulary AS
SELECT * FROM (VALUES
    ('ICD10CM', 'icd10cm'),
    ('SNOMED', 'snomedct'),
    ('LOINC', 'loinc'),
    ('RxNorm', 'rxnorm')
) AS v(vocabulary_id, system);

CREATE OR REPLACE TEMPORARY VIEW imnm_fhir_system AS
SELECT * FROM (VALUES
    ('http://hl7.org/fhir/sid/icd-10-cm', 'icd10cm'),
    ('http://snomed.info/sct', 'snomedct'),
    ('http://loinc.org', 'loinc'),
    ('http://www.nlm.nih.gov/research/umls/rxnorm', 'rxnorm')
) AS v(uri, system);

CREATE OR REPLACE TEMPORARY VIEW imnm_unit_factors AS
SELECT * FROM (VALUES
    ('[iu]/l', 'IU/L', 1.0),
    ('[u]/l', 'U/L', 1.0),
    ('iu/l', 'IU/L', 1.0),
    ('u/l', 'U/L', 1.0),
    ('ukat/l', 'µkat/L', 60.0),
    ('unit/l', 'U/L', 1.0),
    ('units/l', 'U/L', 1.0),
    ('µkat/l', 'µkat/L', 60.0),
    ('μkat/l', 'µkat/L', 60.0)
) AS v(spelling, unit, factor);

CREATE OR REPLACE TEMPORARY VIEW imnm_ck_bands AS
SELECT * FROM (VALUES
    ('male', 0.25, 6.0, 308.0),
    ('male', 6.0, 18.0, 499.0),
    ('male', 18.0, 200.0, 336.0),
    ('female', 0.25, 6.0, 192.0),
    ('female', 6.0, 15.0, 391.0),
    ('female', 15.0, 18.0, 269.0),
    ('female', 18.0, 200.0, 176.0)
) AS v(sex, min_age_years, max_age_years, upper_limit);

CREATE OR REPLACE TEMPORARY VIEW imnm_corticosteroids AS
SELECT * FROM (VALUES
    ('corticosteroid'),
    ('methylprednisolone'),
    ('prednisolone'),
    ('prednisone')
) AS v(concept);

CREATE OR REPLACE TEMPORARY VIEW imnm_immunosuppressants AS
SELECT * FROM (VALUES
    ('azathioprine'),
    ('cyclophosphamide'),
    ('cyclosporine'),
    ('ivig'),
    ('methotrexate'),
    ('mycophenolate_mofetil'),
    ('rituximab'),
    ('tacrolimus')
) AS v(concept);

-- which inputs are missing: all present here; the run replaces this view

CREATE OR REPLACE TEMPORARY VIEW imnm_inputs AS
SELECT * FROM (VALUES
    (0, 0, 0)
) AS v(condition_missing, measurement_missing, drug_missing);

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

-- imnm screen: what the results staging could not read, the same for OMOP and FHIR
-- (DuckDB dialect; transpiled to Spark SQL). Reads the canonical imnm_measurement view; each
-- input's coverage view (coverage_omop.sql, coverage_fhir.sql) adds these rows under its
-- own table name.

CREATE OR REPLACE TEMPORARY VIEW imnm_result_coverage AS
WITH totals AS (
    SELECT
        COUNT(CASE WHEN set_name = 'ck' AND value IS NOT NULL AND factor IS NULL THEN 1 END)
            AS ck_unit_unreadable,
        COUNT(CASE WHEN set_name = 'ck' AND value IS NULL THEN 1 END) AS ck_without_value,
        COUNT(CASE WHEN set_name = 'antibody_test' AND result IS NULL THEN 1 END)
            AS antibody_uninterpretable,
        COUNT(CASE WHEN result_basis = 'reference_range' THEN 1 END)
            AS antibody_by_reference_range,
        COUNT(CASE WHEN set_name = 'genetic_test' AND result IS NULL THEN 1 END)
            AS genetic_uninterpretable
    FROM imnm_measurement
)
-- one pass over the results, one row per count
SELECT i.item,
       CASE i.item
           WHEN 'ck_unit_unreadable' THEN t.ck_unit_unreadable
           WHEN 'ck_without_value' THEN t.ck_without_value
           WHEN 'antibody_uninterpretable' THEN t.antibody_uninterpretable
           WHEN 'antibody_by_reference_range' THEN t.antibody_by_reference_range
           WHEN 'genetic_uninterpretable' THEN t.genetic_uninterpretable
       END AS n
FROM totals AS t
CROSS JOIN (VALUES ('ck_unit_unreadable'), ('ck_without_value'), ('antibody_uninterpretable'),
                   ('antibody_by_reference_range'), ('genetic_uninterpretable')) AS i (item);

-- imnm screen: the coverage counts of the OMOP staging, what was read, used and not read
-- (DuckDB dialect; transpiled to Spark SQL). Run after stage_omop.sql and coverage_results.sql.
-- Each count is one pass. The tally of each event table is read three times below: through
-- a CTE, which DuckDB and PostgreSQL compute once, and staged on Spark, which would compute
-- a CTE again at each use (imnm.screen.run.STAGED_WHERE_CTES_INLINE).

-- Rows per concept pair of each event table (thousands of pairs).
CREATE OR REPLACE TEMPORARY VIEW imnm_tally AS
SELECT 'condition_occurrence' AS input, condition_concept_id AS cid,
       condition_source_concept_id AS sid, COUNT(*) AS n
FROM condition_occurrence
GROUP BY condition_concept_id, condition_source_concept_id
UNION ALL
SELECT 'measurement' AS input, measurement_concept_id AS cid, CAST(NULL AS BIGINT) AS sid,
       COUNT(*) AS n
FROM measurement
GROUP BY measurement_concept_id
UNION ALL
SELECT 'drug_exposure' AS input, drug_concept_id AS cid, drug_source_concept_id AS sid,
       COUNT(*) AS n
FROM drug_exposure
GROUP BY drug_concept_id, drug_source_concept_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_coverage AS
WITH members AS (
    SELECT DISTINCT concept_id FROM imnm_set_concepts
),
tallied AS (
    SELECT input, cid, sid, n FROM imnm_tally
),
-- The distinct concept ids the rows use, looked up in CONCEPT (millions) once each: never
-- every tallied row against the whole vocabulary.
used_ids AS (
    SELECT cid AS concept_id FROM tallied WHERE cid IS NOT NULL AND cid <> 0
    UNION
    SELECT sid AS concept_id FROM tallied WHERE sid IS NOT NULL AND sid <> 0
),
known AS (
    SELECT u.concept_id FROM used_ids AS u JOIN concept AS c ON c.concept_id = u.concept_id
),
flagged AS (
    SELECT t.input, t.n,
           CASE WHEN mc.concept_id IS NOT NULL OR ms.concept_id IS NOT NULL THEN 1 ELSE 0 END
               AS used,
           CASE WHEN COALESCE(t.cid, 0) = 0 AND COALESCE(t.sid, 0) = 0 THEN 1 ELSE 0 END
               AS unmapped,
           CASE WHEN kc.concept_id IS NULL AND ks.concept_id IS NULL THEN 1 ELSE 0 END
               AS unknown
    FROM tallied AS t
    LEFT JOIN members AS mc ON mc.concept_id = t.cid
    LEFT JOIN members AS ms ON ms.concept_id = t.sid
    LEFT JOIN known AS kc ON kc.concept_id = t.cid AND t.cid <> 0
    LEFT JOIN known AS ks ON ks.concept_id = t.sid AND t.sid <> 0
),
per_input AS (
    SELECT input,
           SUM(n) AS rows_read,
           SUM(CASE WHEN used = 1 THEN n ELSE 0 END) AS in_code_set,
           SUM(CASE WHEN used = 0 AND unmapped = 1 THEN n ELSE 0 END) AS concept_id_0,
           SUM(CASE WHEN used = 0 AND unmapped = 0 AND unknown = 1 THEN n ELSE 0 END)
               AS concept_not_in_vocabulary
    FROM flagged
    GROUP BY input
),
by_item AS (
    SELECT p.input, i.item,
           CASE i.item
               WHEN 'rows' THEN p.rows_read
               WHEN 'in_code_set' THEN p.in_code_set
               WHEN 'concept_id_0' THEN p.concept_id_0
               WHEN 'concept_not_in_vocabulary' THEN p.concept_not_in_vocabulary
           END AS n
    FROM per_input AS p
    CROSS JOIN (VALUES ('rows'), ('in_code_set'), ('concept_id_0'),
                       ('concept_not_in_vocabulary')) AS i (item)
),
people AS (
    SELECT COUNT(*) AS rows_read,
           COUNT(CASE WHEN year_of_birth IS NULL THEN 1 END) AS no_birth_year
    FROM person
)
SELECT input, item, n FROM by_item WHERE n > 0
UNION ALL
SELECT 'measurement' AS input, item, n FROM imnm_result_coverage
UNION ALL
SELECT 'person' AS input, i.item,
       CASE i.item WHEN 'rows' THEN p.rows_read WHEN 'no_birth_year' THEN p.no_birth_year END
           AS n
FROM people AS p CROSS JOIN (VALUES ('rows'), ('no_birth_year')) AS i (item)
UNION ALL
SELECT 'vocabulary' AS input, 'concept_ancestor_rows' AS item, COUNT(*) AS n
FROM concept_ancestor
UNION ALL
SELECT 'vocabulary' AS input, 'concept_relationship_hierarchy_rows' AS item, COUNT(*) AS n
FROM concept_relationship AS r JOIN imnm_hierarchy AS h ON h.relationship_id = r.relationship_id
UNION ALL
SELECT 'vocabulary' AS input, CONCAT('set_concepts_by_', how) AS item, COUNT(*) AS n
FROM imnm_set_concepts GROUP BY how
UNION ALL
SELECT 'drug_exposure' AS input, CONCAT('in_code_set_by_', how) AS item, COUNT(*) AS n
FROM imnm_drug GROUP BY how;

-- imnm screen: population case finding over the canonical views (DuckDB dialect; transpiled
-- to Spark SQL). The code sets, CK limits, unit factors and parameters come from the same
-- knowledge files as the per-child rules, rendered into the imnm_* lookup views by
-- imnm.screen.definition. One row per child and tier:
--   test_for_antibodies    suspicion.dystrophy_label_unconfirmed: a dystrophy or unexplained
--                          myopathy label, no diagnostic genetic result, peak CK above
--                          min_ck_multiple x ULN, anti-HMGCR or anti-SRP never resulted, and
--                          neither positive
--   review_dystrophy_label suspicion.antibody_positive_with_dystrophy_label: a positive
--                          anti-HMGCR or anti-SRP under a dystrophy label
--   review_treatment       treatment.corticosteroid_alone: a positive anti-HMGCR or anti-SRP
--                          and corticosteroid without any other immunosuppressant or IVIg for
--                          at least review_weeks
--   not_assessable         a table the tier needs is missing from the input (imnm_inputs)
-- Weakness is rarely coded, so the screen runs the suspicion rule with proximal weakness not
-- required (parameter suspicion_require_proximal_weakness = false) and family history unknown.

-- The facts of every child are one aggregation of one stream of events, and the tiers one
-- pass over those facts: Spark inlines a CTE at each place it is used, so a CTE read twice is
-- computed twice (the shape this replaced, with the facts read by six tiers and each rule's
-- facts read twice, ran 38 Spark jobs of 101 stages on 600 children). Only the labels are
-- read twice: for the facts, and for the codes the worklist shows (one ordered aggregate
-- over the labels alone; over every event it cost DuckDB 40 ms at 100,000 children).

WITH params AS (
    SELECT * FROM imnm_params
),
people AS (
    SELECT p.person_id, p.birth_date, p.sex,
           DATE_DIFF('day', p.birth_date, params.as_of) / 365.25 AS age_years
    FROM imnm_person AS p CROSS JOIN params
    WHERE p.birth_date IS NULL
       OR DATE_DIFF('day', p.birth_date, params.as_of) / 365.25 <= params.max_age_years
),
-- The active labels up to the screen date, each code once per label set.
labels AS (
    SELECT DISTINCT c.person_id, c.set_name, c.code
    FROM imnm_condition AS c CROSS JOIN params
    WHERE c.active AND (c.start_date IS NULL OR c.start_date <= params.as_of)
),
label_codes AS (
    SELECT person_id, STRING_AGG(code, ';' ORDER BY code NULLS FIRST) AS label_codes
    FROM labels
    GROUP BY person_id
),
-- One row per event the rules read, up to the screen date: the labels, the results, and the
-- drug exposures with whether each is a corticosteroid or another immunosuppressant or IVIg.
events AS (
    SELECT l.person_id, l.set_name, CAST(NULL AS VARCHAR) AS concept,
           CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS factor,
           CAST(NULL AS DOUBLE) AS range_high, CAST(NULL AS VARCHAR) AS result,
           CAST(NULL AS DATE) AS date, CAST(NULL AS DATE) AS end_date,
           0 AS steroid, 0 AS other_drug
    FROM labels AS l
    UNION ALL
    SELECT m.person_id, m.set_name, m.concept,
           m.value, m.factor, m.range_high, m.result, m.date, CAST(NULL AS DATE) AS end_date,
           0 AS steroid, 0 AS other_drug
    FROM imnm_measurement AS m CROSS JOIN params
    WHERE m.date IS NULL OR m.date <= params.as_of
    UNION ALL
    SELECT d.person_id, 'drug' AS set_name, d.concept,
           CAST(NULL AS DOUBLE) AS value, CAST(NULL AS DOUBLE) AS factor,
           CAST(NULL AS DOUBLE) AS range_high, CAST(NULL AS VARCHAR) AS result,
           d.start_date AS date, COALESCE(d.end_date, d.start_date) AS end_date,
           CASE WHEN cs.concept IS NULL THEN 0 ELSE 1 END AS steroid,
           CASE WHEN ot.concept IS NULL THEN 0 ELSE 1 END AS other_drug
    FROM imnm_drug AS d
    CROSS JOIN params
    -- (a concept listed twice would repeat the row, which the facts' MIN and MAX ignore)
    LEFT JOIN imnm_corticosteroids AS cs ON cs.concept = d.concept
    LEFT JOIN imnm_immunosuppressants AS ot ON ot.concept = d.concept
    WHERE d.start_date IS NOT NULL AND d.start_date <= params.as_of
),
-- Each event of a child in scope, with a CK result's value and upper limit in U/L: the
-- result's own reference range, else the band for the child's sex and age on the day (the
-- male band where sex is unknown), else the highest band where the birth date is unknown.
scored AS (
    SELECT p.person_id, p.sex, p.age_years, e.set_name, e.concept, e.result,
           e.date, e.end_date, e.steroid, e.other_drug,
           CASE WHEN e.set_name = 'ck' AND e.value IS NOT NULL AND e.value >= 0
                     AND e.factor IS NOT NULL THEN 1 ELSE 0 END AS is_ck,
           e.value * e.factor AS value_u_per_l,
           COALESCE(e.range_high * e.factor, b.upper_limit,
                    CASE WHEN p.birth_date IS NULL THEN top.upper_limit END) AS uln
    FROM events AS e
    JOIN people AS p ON p.person_id = e.person_id
    CROSS JOIN params
    LEFT JOIN imnm_ck_bands AS b
        ON e.set_name = 'ck'
       AND b.sex = CASE WHEN p.sex IN ('male', 'female') THEN p.sex ELSE 'male' END
       AND DATE_DIFF('day', p.birth_date, COALESCE(e.date, params.as_of)) / 365.25
           >= b.min_age_years
       AND DATE_DIFF('day', p.birth_date, COALESCE(e.date, params.as_of)) / 365.25
           < b.max_age_years
    CROSS JOIN (SELECT MAX(upper_limit) AS upper_limit FROM imnm_ck_bands) AS top
),
facts AS (
    SELECT s.person_id, MAX(s.sex) AS sex, MAX(s.age_years) AS age_years,
           MAX(CASE WHEN s.set_name = 'dystrophy' THEN 1 ELSE 0 END) AS has_dystrophy,
           MAX(CASE WHEN s.set_name IN ('dystrophy', 'unexplained_myopathy') THEN 1 ELSE 0 END)
               AS has_warning_label,
           MAX(CASE WHEN s.is_ck = 1 THEN s.value_u_per_l END) AS peak_u_per_l,
           MAX(CASE WHEN s.is_ck = 1 THEN s.value_u_per_l / s.uln END) AS peak_multiple,
           MAX(CASE WHEN s.is_ck = 1 AND s.value_u_per_l / s.uln > params.min_ck_multiple
                    THEN 1 ELSE 0 END) AS ck_high,
           MAX(CASE WHEN s.set_name <> 'antibody_test' THEN 0
                    WHEN s.concept = 'HMGCR' AND s.result = 'positive' THEN 2
                    WHEN s.concept = 'HMGCR' AND s.result = 'negative' THEN 1 ELSE 0 END)
               AS hmgcr,
           MAX(CASE WHEN s.set_name <> 'antibody_test' THEN 0
                    WHEN s.concept = 'SRP' AND s.result = 'positive' THEN 2
                    WHEN s.concept = 'SRP' AND s.result = 'negative' THEN 1 ELSE 0 END) AS srp,
           MAX(CASE WHEN s.set_name = 'genetic_test' AND s.result = 'positive' THEN 1 ELSE 0 END)
               AS genetic_confirmed,
           CASE WHEN MAX(s.steroid) = 1 AND MAX(s.other_drug) = 0
                THEN DATE_DIFF('day', MIN(CASE WHEN s.steroid = 1 THEN s.date END),
                               LEAST(MAX(CASE WHEN s.steroid = 1 THEN s.end_date END),
                                     MAX(params.as_of)))
           END AS steroid_alone_days
    FROM scored AS s CROSS JOIN params
    GROUP BY s.person_id
),
tier_rules AS (
    SELECT * FROM (VALUES
        (1, 'test_for_antibodies', 'suspicion.dystrophy_label_unconfirmed [wang_liang_2023]'),
        (2, 'review_dystrophy_label',
         'suspicion.antibody_positive_with_dystrophy_label [wang_liang_2023]'),
        (3, 'review_treatment',
         'treatment.corticosteroid_alone [wang_liang_2023]; review by 12 weeks [share_2017]'),
        (4, 'not_assessable', 'missing input: measurement (CK, antibody and genetic results)'),
        (5, 'not_assessable', 'missing input: condition (diagnosis labels)'),
        (6, 'not_assessable', 'missing input: drug exposure (treatments)')
    ) AS t (tier_rule, tier, reasons)
),
tiers AS (
    SELECT f.*, t.tier, t.reasons
    FROM facts AS f
    CROSS JOIN params
    CROSS JOIN imnm_inputs AS i
    JOIN tier_rules AS t
        ON (t.tier_rule = 1 AND f.has_warning_label = 1 AND f.genetic_confirmed = 0
            AND f.ck_high = 1 AND (f.hmgcr = 0 OR f.srp = 0) AND f.hmgcr < 2 AND f.srp < 2)
        OR (t.tier_rule = 2 AND f.has_dystrophy = 1 AND (f.hmgcr = 2 OR f.srp = 2))
        OR (t.tier_rule = 3 AND (f.hmgcr = 2 OR f.srp = 2)
            AND f.steroid_alone_days >= params.review_days)
        OR (t.tier_rule = 4 AND i.measurement_missing = 1 AND f.has_warning_label = 1)
        OR (t.tier_rule = 5 AND i.condition_missing = 1 AND f.ck_high = 1)
        OR (t.tier_rule = 6 AND i.drug_missing = 1 AND (f.hmgcr = 2 OR f.srp = 2))
)
SELECT
    t.person_id, t.tier, t.reasons, t.sex, FLOOR(t.age_years) AS age_years, l.label_codes,
    ROUND(t.peak_u_per_l, 1) AS peak_ck_u_per_l,
    ROUND(t.peak_multiple, 2) AS peak_ck_multiple_of_uln,
    CASE t.hmgcr WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END
        AS anti_hmgcr,
    CASE t.srp WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_srp,
    t.steroid_alone_days AS days_on_corticosteroid_alone
FROM tiers AS t
LEFT JOIN label_codes AS l ON l.person_id = t.person_id
ORDER BY t.tier, t.person_id;
