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

-- The unit and answer concepts of the matching rows only, looked up in CONCEPT once: the
-- lookups then then join a few rows, never the whole vocabulary.
CREATE OR REPLACE TEMPORARY VIEW imnm_measurement AS
WITH hits AS (
    SELECT m.person_id, s.set_name, s.concept, s.code,
           m.value_as_number AS value, m.value_as_concept_id, m.unit_concept_id,
           LOWER(NULLIF(TRIM(m.unit_source_value), '')) AS unit_source,
           m.range_high,
           LOWER(NULLIF(TRIM(m.value_source_value), '')) AS value_text,
           m.measurement_date AS date
    FROM measurement AS m
    JOIN imnm_set_concepts AS s ON s.concept_id = m.measurement_concept_id
    WHERE s.set_name IN ('ck', 'antibody_test', 'genetic_test')
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
SELECT 'ck_unit_unreadable' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'ck' AND value IS NOT NULL AND factor IS NULL
UNION ALL
SELECT 'ck_without_value' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'ck' AND value IS NULL
UNION ALL
SELECT 'antibody_uninterpretable' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'antibody_test' AND result IS NULL
UNION ALL
SELECT 'antibody_by_reference_range' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE result_basis = 'reference_range'
UNION ALL
SELECT 'genetic_uninterpretable' AS item, COUNT(*) AS n
FROM imnm_measurement WHERE set_name = 'genetic_test' AND result IS NULL;

-- imnm screen: the coverage counts of the OMOP staging, what was read, used and not read
-- (DuckDB dialect; transpiled to Spark SQL). Run after stage_omop.sql and coverage_results.sql.

CREATE OR REPLACE TEMPORARY VIEW imnm_coverage AS
WITH members AS (
    SELECT DISTINCT concept_id FROM imnm_set_concepts
),
conditions AS (
    SELECT condition_concept_id AS cid, condition_source_concept_id AS sid, COUNT(*) AS n
    FROM condition_occurrence
    GROUP BY condition_concept_id, condition_source_concept_id
),
measurements AS (
    SELECT measurement_concept_id AS cid, CAST(NULL AS BIGINT) AS sid, COUNT(*) AS n
    FROM measurement
    GROUP BY measurement_concept_id
),
drugs AS (
    SELECT drug_concept_id AS cid, drug_source_concept_id AS sid, COUNT(*) AS n
    FROM drug_exposure
    GROUP BY drug_concept_id, drug_source_concept_id
),
tallied AS (
    SELECT 'condition_occurrence' AS input, * FROM conditions
    UNION ALL
    SELECT 'measurement' AS input, * FROM measurements
    UNION ALL
    SELECT 'drug_exposure' AS input, * FROM drugs
),
-- The distinct concept ids the rows use (thousands), looked up in CONCEPT (millions) once
-- each: never every tallied row against the whole vocabulary.
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
)
SELECT input, 'rows' AS item, SUM(n) AS n FROM flagged GROUP BY input
UNION ALL
SELECT input, 'in_code_set' AS item, SUM(n) AS n FROM flagged WHERE used = 1 GROUP BY input
UNION ALL
SELECT input, 'concept_id_0' AS item, SUM(n) AS n FROM flagged
WHERE used = 0 AND unmapped = 1 GROUP BY input
UNION ALL
SELECT input, 'concept_not_in_vocabulary' AS item, SUM(n) AS n FROM flagged
WHERE used = 0 AND unmapped = 0 AND unknown = 1 GROUP BY input
UNION ALL
SELECT 'measurement' AS input, item, n FROM imnm_result_coverage
UNION ALL
SELECT 'person' AS input, 'rows' AS item, COUNT(*) AS n FROM person
UNION ALL
SELECT 'person' AS input, 'no_birth_year' AS item, COUNT(*) AS n FROM person
WHERE year_of_birth IS NULL
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
active_conditions AS (
    SELECT c.person_id, c.set_name, c.code
    FROM imnm_condition AS c CROSS JOIN params
    WHERE c.active AND (c.start_date IS NULL OR c.start_date <= params.as_of)
),
label_flags AS (
    SELECT person_id,
           MAX(CASE WHEN set_name = 'dystrophy' THEN 1 ELSE 0 END) AS has_dystrophy,
           MAX(CASE WHEN set_name IN ('dystrophy', 'unexplained_myopathy') THEN 1 ELSE 0 END)
               AS has_warning_label,
           STRING_AGG(code, ';' ORDER BY code NULLS FIRST) AS label_codes
    FROM (SELECT DISTINCT person_id, set_name, code FROM active_conditions) AS distinct_codes
    GROUP BY person_id
),
results AS (
    SELECT m.person_id, m.set_name, m.concept, m.value, m.factor, m.range_high, m.result,
           m.date
    FROM imnm_measurement AS m
    CROSS JOIN params
    WHERE m.date IS NULL OR m.date <= params.as_of
),
ck AS (
    SELECT r.person_id, r.date,
           r.value * r.factor AS value_u_per_l,
           COALESCE(r.range_high * r.factor, b.upper_limit,
                    CASE WHEN p.birth_date IS NULL THEN top.upper_limit END) AS uln
    FROM results AS r
    CROSS JOIN params
    JOIN people AS p ON p.person_id = r.person_id
    LEFT JOIN imnm_ck_bands AS b
        ON b.sex = CASE WHEN p.sex IN ('male', 'female') THEN p.sex ELSE 'male' END
       AND DATE_DIFF('day', p.birth_date, COALESCE(r.date, params.as_of)) / 365.25
           >= b.min_age_years
       AND DATE_DIFF('day', p.birth_date, COALESCE(r.date, params.as_of)) / 365.25
           < b.max_age_years
    CROSS JOIN (SELECT MAX(upper_limit) AS upper_limit FROM imnm_ck_bands) AS top
    WHERE r.set_name = 'ck' AND r.value IS NOT NULL AND r.value >= 0 AND r.factor IS NOT NULL
),
ck_peak AS (
    SELECT ck.person_id,
           MAX(ck.value_u_per_l / ck.uln) AS peak_multiple,
           MAX(ck.value_u_per_l) AS peak_u_per_l,
           MAX(CASE WHEN ck.value_u_per_l / ck.uln > params.min_ck_multiple THEN 1 ELSE 0 END)
               AS ck_high
    FROM ck CROSS JOIN params
    GROUP BY ck.person_id
),
antibodies AS (
    SELECT person_id,
           MAX(CASE WHEN concept = 'HMGCR' AND result = 'positive' THEN 2
                    WHEN concept = 'HMGCR' AND result = 'negative' THEN 1 ELSE 0 END) AS hmgcr,
           MAX(CASE WHEN concept = 'SRP' AND result = 'positive' THEN 2
                    WHEN concept = 'SRP' AND result = 'negative' THEN 1 ELSE 0 END) AS srp
    FROM results
    WHERE set_name = 'antibody_test' AND result IS NOT NULL
    GROUP BY person_id
),
genetics AS (
    SELECT person_id, MAX(CASE WHEN result = 'positive' THEN 1 ELSE 0 END) AS confirmed
    FROM results
    WHERE set_name = 'genetic_test'
    GROUP BY person_id
),
drugs AS (
    SELECT d.person_id, d.concept, d.start_date,
           COALESCE(d.end_date, d.start_date) AS end_date
    FROM imnm_drug AS d
    CROSS JOIN params
    WHERE d.start_date IS NOT NULL AND d.start_date <= params.as_of
),
steroid_alone AS (
    SELECT d.person_id,
           DATE_DIFF('day', MIN(d.start_date),
                     LEAST(MAX(d.end_date), MAX(params.as_of))) AS days
    FROM drugs AS d CROSS JOIN params
    WHERE d.concept IN (SELECT concept FROM imnm_corticosteroids)
      AND d.person_id NOT IN (
          SELECT person_id FROM drugs
          WHERE concept IN (SELECT concept FROM imnm_immunosuppressants))
    GROUP BY d.person_id
),
candidates AS (
    SELECT person_id FROM label_flags
    UNION
    SELECT person_id FROM antibodies
    UNION
    SELECT person_id FROM steroid_alone
    UNION
    SELECT person_id FROM ck_peak WHERE ck_high = 1
),
facts AS (
    SELECT p.person_id, p.sex, p.age_years,
           COALESCE(l.has_dystrophy, 0) AS has_dystrophy,
           COALESCE(l.has_warning_label, 0) AS has_warning_label,
           l.label_codes,
           c.peak_u_per_l, c.peak_multiple, COALESCE(c.ck_high, 0) AS ck_high,
           COALESCE(a.hmgcr, 0) AS hmgcr, COALESCE(a.srp, 0) AS srp,
           COALESCE(g.confirmed, 0) AS genetic_confirmed,
           s.days AS steroid_alone_days
    FROM candidates AS x
    JOIN people AS p ON p.person_id = x.person_id
    LEFT JOIN label_flags AS l ON l.person_id = p.person_id
    LEFT JOIN ck_peak AS c ON c.person_id = p.person_id
    LEFT JOIN antibodies AS a ON a.person_id = p.person_id
    LEFT JOIN genetics AS g ON g.person_id = p.person_id
    LEFT JOIN steroid_alone AS s ON s.person_id = p.person_id
),
tiers AS (
    SELECT f.*, 'test_for_antibodies' AS tier,
           'suspicion.dystrophy_label_unconfirmed [wang_liang_2023]' AS reasons
    FROM facts AS f
    WHERE f.has_warning_label = 1 AND f.genetic_confirmed = 0 AND f.ck_high = 1
      AND (f.hmgcr = 0 OR f.srp = 0) AND f.hmgcr < 2 AND f.srp < 2
    UNION ALL
    SELECT f.*, 'review_dystrophy_label' AS tier,
           'suspicion.antibody_positive_with_dystrophy_label [wang_liang_2023]' AS reasons
    FROM facts AS f
    WHERE f.has_dystrophy = 1 AND (f.hmgcr = 2 OR f.srp = 2)
    UNION ALL
    SELECT f.*, 'review_treatment' AS tier,
           'treatment.corticosteroid_alone [wang_liang_2023]; review by 12 weeks [share_2017]'
               AS reasons
    FROM facts AS f CROSS JOIN params
    WHERE (f.hmgcr = 2 OR f.srp = 2) AND f.steroid_alone_days >= params.review_days
    UNION ALL
    SELECT f.*, 'not_assessable' AS tier,
           'missing input: measurement (CK, antibody and genetic results)' AS reasons
    FROM facts AS f CROSS JOIN imnm_inputs AS i
    WHERE i.measurement_missing = 1 AND f.has_warning_label = 1
    UNION ALL
    SELECT f.*, 'not_assessable' AS tier, 'missing input: condition (diagnosis labels)' AS reasons
    FROM facts AS f CROSS JOIN imnm_inputs AS i
    WHERE i.condition_missing = 1 AND f.ck_high = 1
    UNION ALL
    SELECT f.*, 'not_assessable' AS tier, 'missing input: drug exposure (treatments)' AS reasons
    FROM facts AS f CROSS JOIN imnm_inputs AS i
    WHERE i.drug_missing = 1 AND (f.hmgcr = 2 OR f.srp = 2)
)
SELECT
    person_id, tier, reasons, sex, FLOOR(age_years) AS age_years, label_codes,
    ROUND(peak_u_per_l, 1) AS peak_ck_u_per_l,
    ROUND(peak_multiple, 2) AS peak_ck_multiple_of_uln,
    CASE hmgcr WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_hmgcr,
    CASE srp WHEN 2 THEN 'positive' WHEN 1 THEN 'negative' ELSE 'not tested' END AS anti_srp,
    steroid_alone_days AS days_on_corticosteroid_alone
FROM tiers
ORDER BY tier, person_id;
