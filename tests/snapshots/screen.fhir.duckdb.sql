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

-- imnm screen, staging from FHIR R4 bulk NDJSON (DuckDB dialect; transpiled to Spark SQL).
-- Reads the raw resource views fhir_patient, fhir_condition, fhir_observation,
-- fhir_medicationrequest and fhir_medicationadministration (one row per NDJSON line, schema
-- in sources.py) and writes the same canonical views as the OMOP staging, plus imnm_coverage.
-- Conditions: refuted and entered-in-error are left out; resolved, inactive and remission
-- are kept but not active. Observations: entered-in-error and cancelled are left out. Dates:
-- the first ten characters of a dateTime. References: the id after the last '/' or ':', so
-- 'Patient/123', 'urn:uuid:123' and 'https://ehr/fhir/Patient/123' all name patient 123.
-- Medications: RxNorm ingredients and the products of results.toml; a medication none of
-- whose codings is known is matched, as a stated fallback, by an ingredient's name as a whole
-- word of its text or display (counted in imnm_coverage).
-- Results: a coded answer (SNOMED CT / LOINC answer codes, or the whole text), else an HL7
-- interpretation code, else the number against the result's own reference range.

CREATE OR REPLACE TEMPORARY VIEW imnm_person AS
SELECT
    p.id AS person_id,
    TRY_CAST(SUBSTR(p.birthDate, 1, 10) AS DATE) AS birth_date,
    CASE WHEN p.gender IN ('male', 'female') THEN p.gender ELSE 'unknown' END AS sex
FROM fhir_patient AS p
WHERE p.id IS NOT NULL;

CREATE OR REPLACE TEMPORARY VIEW imnm_condition_codings AS
WITH codings AS (
    SELECT
        c.id AS resource_id,
        REGEXP_EXTRACT(c.subject.reference, '([^/:]+)$', 1) AS person_id,
        cd.system AS uri,
        cd.code AS code,
        TRY_CAST(SUBSTR(COALESCE(c.onsetDateTime, c.recordedDate), 1, 10) AS DATE)
            AS start_date,
        COALESCE(c.clinicalStatus.coding[1].code, 'active')
            NOT IN ('resolved', 'inactive', 'remission') AS active
    FROM fhir_condition AS c
    CROSS JOIN UNNEST(c.code.coding) AS t(cd)
    WHERE COALESCE(c.verificationStatus.coding[1].code, 'confirmed')
        NOT IN ('refuted', 'entered-in-error')
)
SELECT x.resource_id, x.person_id, s.system, x.code, x.start_date, x.active
FROM codings AS x
LEFT JOIN imnm_fhir_system AS s ON s.uri = x.uri;

CREATE OR REPLACE TEMPORARY VIEW imnm_condition AS
SELECT DISTINCT x.person_id, k.set_name, k.concept, x.code, x.start_date, x.active
FROM imnm_condition_codings AS x
JOIN imnm_codes AS k ON k.system = x.system AND k.code = x.code
WHERE k.match_kind = 'exact' AND k.set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis')
UNION
SELECT DISTINCT x.person_id, k.set_name, k.concept, x.code, x.start_date, x.active
FROM imnm_condition_codings AS x
JOIN imnm_codes AS k
    ON k.system = x.system AND SUBSTR(x.code, 1, LENGTH(k.code)) = k.code
WHERE k.match_kind = 'prefix' AND k.set_name IN ('dystrophy', 'unexplained_myopathy', 'myositis');

CREATE OR REPLACE TEMPORARY VIEW imnm_observation_codings AS
WITH codings AS (
SELECT
    o.id AS resource_id,
    REGEXP_EXTRACT(o.subject.reference, '([^/:]+)$', 1) AS person_id,
    cd.system AS uri,
    cd.code AS code,
    o.valueQuantity.value AS value,
    LOWER(TRIM(COALESCE(o.valueQuantity.code, o.valueQuantity.unit))) AS unit_text,
    o.referenceRange[1].high.value AS range_high,
    LOWER(TRIM(REPLACE(COALESCE(o.valueCodeableConcept.text,
                                o.valueCodeableConcept.coding[1].display, o.valueString),
                       CHR(8203), ''))) AS answer_text,
    o.interpretation[1].coding[1].code AS interpretation,
    TRY_CAST(SUBSTR(o.effectiveDateTime, 1, 10) AS DATE) AS date
FROM fhir_observation AS o
CROSS JOIN UNNEST(o.code.coding) AS t(cd)
WHERE COALESCE(o.status, 'final') NOT IN ('entered-in-error', 'cancelled')
)
SELECT x.resource_id, x.person_id, s.system, x.code, x.value, x.unit_text, x.range_high,
       x.answer_text, x.interpretation, x.date
FROM codings AS x
LEFT JOIN imnm_fhir_system AS s ON s.uri = x.uri;

CREATE OR REPLACE TEMPORARY VIEW imnm_observation_answers AS
WITH codings AS (
    SELECT o.id AS resource_id, vc.system AS uri, vc.code AS code
    FROM fhir_observation AS o
    CROSS JOIN UNNEST(o.valueCodeableConcept.coding) AS t(vc)
)
SELECT x.resource_id,
       CASE WHEN MIN(a.answer) = MAX(a.answer) THEN MIN(a.answer) END AS answer
FROM codings AS x
JOIN imnm_fhir_system AS s ON s.uri = x.uri
JOIN imnm_answer_codes AS a ON a.system = s.system AND a.code = x.code
GROUP BY x.resource_id;

CREATE OR REPLACE TEMPORARY VIEW imnm_measurement AS
WITH hits AS (
    SELECT x.*, k.set_name, k.concept
    FROM imnm_observation_codings AS x
    JOIN imnm_codes AS k ON k.system = x.system AND k.code = x.code
    WHERE k.match_kind = 'exact' AND k.set_name IN ('ck', 'antibody_test', 'genetic_test')
),
coded AS (
    SELECT h.*, f.unit, f.factor,
           COALESCE(a.answer, w.answer, i.answer) AS coded_answer,
           CASE WHEN a.answer IS NOT NULL OR w.answer IS NOT NULL THEN 'coded'
                WHEN i.answer IS NOT NULL THEN 'interpretation' END AS coded_basis
    FROM hits AS h
    LEFT JOIN imnm_unit_factors AS f ON f.spelling = h.unit_text
    LEFT JOIN imnm_observation_answers AS a ON a.resource_id = h.resource_id
    LEFT JOIN imnm_answer_words AS w ON w.text = h.answer_text
    LEFT JOIN imnm_interpretations AS i ON i.code = h.interpretation
)
SELECT
    person_id, set_name, concept, code,
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
        WHEN coded_answer IS NOT NULL THEN coded_basis
        WHEN value IS NOT NULL AND range_high IS NOT NULL THEN 'reference_range'
    END AS result_basis,
    date
FROM coded;

CREATE OR REPLACE TEMPORARY VIEW imnm_medications AS
SELECT
    r.id AS resource_id,
    REGEXP_EXTRACT(r.subject.reference, '([^/:]+)$', 1) AS person_id,
    r.medicationCodeableConcept AS medication,
    TRY_CAST(SUBSTR(COALESCE(r.dispenseRequest.validityPeriod.start, r.authoredOn), 1, 10)
        AS DATE) AS start_date,
    TRY_CAST(SUBSTR(r.dispenseRequest.validityPeriod."end", 1, 10) AS DATE) AS end_date
FROM fhir_medicationrequest AS r
WHERE COALESCE(r.status, 'active') NOT IN ('entered-in-error', 'cancelled', 'draft')
UNION ALL
SELECT
    a.id AS resource_id,
    REGEXP_EXTRACT(a.subject.reference, '([^/:]+)$', 1) AS person_id,
    a.medicationCodeableConcept AS medication,
    TRY_CAST(SUBSTR(COALESCE(a.effectivePeriod.start, a.effectiveDateTime), 1, 10)
        AS DATE) AS start_date,
    TRY_CAST(SUBSTR(COALESCE(a.effectivePeriod."end", a.effectiveDateTime), 1, 10)
        AS DATE) AS end_date
FROM fhir_medicationadministration AS a
WHERE COALESCE(a.status, 'completed') NOT IN ('entered-in-error', 'not-done');

CREATE OR REPLACE TEMPORARY VIEW imnm_drug_matches AS
WITH codings AS (
    SELECT m.resource_id, m.person_id, cd.system AS uri, cd.code AS code, m.start_date,
           m.end_date
    FROM imnm_medications AS m
    CROSS JOIN UNNEST(m.medication.coding) AS t(cd)
),
coded AS (
    SELECT x.resource_id, x.person_id, k.concept, x.code, k.how, x.start_date, x.end_date
    FROM codings AS x
    JOIN imnm_fhir_system AS s ON s.uri = x.uri
    JOIN imnm_codes AS k ON k.system = s.system AND k.code = x.code
    WHERE k.set_name = 'drug'
),
by_text AS (
    SELECT m.resource_id, m.person_id, n.concept, n.name AS code, 'display_text' AS how,
           m.start_date, m.end_date
    FROM imnm_medications AS m
    JOIN imnm_drug_names AS n
        ON (' ' || REGEXP_REPLACE(LOWER(COALESCE(m.medication.text,
                                                 m.medication.coding[1].display)),
                                  '[^a-z0-9]+', ' ', 'g') || ' ')
           LIKE ('% ' || n.name || ' %')
    WHERE m.resource_id NOT IN (SELECT resource_id FROM coded WHERE resource_id IS NOT NULL)
)
SELECT resource_id, person_id, concept, code, how, start_date, end_date FROM coded
UNION ALL
SELECT resource_id, person_id, concept, code, how, start_date, end_date FROM by_text;

CREATE OR REPLACE TEMPORARY VIEW imnm_drug AS
SELECT person_id, concept, code, how, start_date, end_date FROM imnm_drug_matches;

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

-- imnm screen: the coverage counts of the FHIR staging, what was read, used and not read
-- (DuckDB dialect; transpiled to Spark SQL). Run after stage_fhir.sql and coverage_results.sql.
-- Each resource is read once, the patients are looked up once for all three resource types,
-- and each count is one pass (Spark computes a CTE again at each place it is read).

CREATE OR REPLACE TEMPORARY VIEW imnm_coverage AS
WITH patients AS (
    SELECT DISTINCT person_id FROM imnm_person
),
-- one row per resource and coding: whether the coding's system is known and whether it
-- matched a code set
codings AS (
    SELECT 'Condition' AS input, c.id,
           REGEXP_EXTRACT(c.subject.reference, '([^/:]+)$', 1) AS subject,
           CASE WHEN x.system IS NOT NULL THEN 1 ELSE 0 END AS known_system,
           CASE WHEN k.person_id IS NOT NULL THEN 1 ELSE 0 END AS used
    FROM fhir_condition AS c
    LEFT JOIN imnm_condition_codings AS x ON x.resource_id = c.id
    LEFT JOIN imnm_condition AS k ON k.person_id = x.person_id AND k.code = x.code
    UNION ALL
    SELECT 'Observation' AS input, o.id,
           REGEXP_EXTRACT(o.subject.reference, '([^/:]+)$', 1) AS subject,
           CASE WHEN x.system IS NOT NULL THEN 1 ELSE 0 END AS known_system,
           CASE WHEN k.set_name IS NOT NULL THEN 1 ELSE 0 END AS used
    FROM fhir_observation AS o
    LEFT JOIN imnm_observation_codings AS x ON x.resource_id = o.id
    LEFT JOIN imnm_codes AS k ON k.system = x.system AND k.code = x.code
        AND k.set_name IN ('ck', 'antibody_test', 'genetic_test')
    UNION ALL
    SELECT 'Medication' AS input, m.resource_id AS id, m.person_id AS subject,
           1 AS known_system,
           CASE WHEN d.concept IS NOT NULL THEN 1 ELSE 0 END AS used
    FROM imnm_medications AS m
    LEFT JOIN imnm_drug_matches AS d ON d.resource_id = m.resource_id
),
resources AS (
    SELECT x.input, x.id,
           MAX(x.known_system) AS known_system,
           MAX(x.used) AS used,
           MAX(CASE WHEN p.person_id IS NULL THEN 1 ELSE 0 END) AS orphan
    FROM codings AS x
    LEFT JOIN patients AS p ON p.person_id = x.subject
    GROUP BY x.input, x.id
),
totals AS (
    SELECT input,
           COUNT(*) AS rows_read,
           SUM(used) AS in_code_set,
           COUNT(CASE WHEN known_system = 0 THEN 1 END) AS no_known_code_system,
           SUM(orphan) AS subject_not_a_patient
    FROM resources
    GROUP BY input
),
by_item AS (
    SELECT t.input, i.item,
           CASE i.item
               WHEN 'rows' THEN t.rows_read
               WHEN 'in_code_set' THEN t.in_code_set
               WHEN 'no_known_code_system' THEN t.no_known_code_system
               WHEN 'subject_not_a_patient' THEN t.subject_not_a_patient
           END AS n
    FROM totals AS t
    CROSS JOIN (VALUES ('rows'), ('in_code_set'), ('no_known_code_system'),
                       ('subject_not_a_patient')) AS i (item)
)
-- (a resource type with no rows has no line here; the run counts it as 0)
SELECT input, item, n FROM by_item
WHERE NOT (input = 'Medication' AND item = 'no_known_code_system')
UNION ALL
SELECT 'Observation' AS input, item, n FROM imnm_result_coverage
UNION ALL
SELECT 'Medication' AS input, CONCAT('in_code_set_by_', how) AS item, COUNT(*) AS n
FROM imnm_drug GROUP BY how
UNION ALL
SELECT 'person' AS input, 'rows' AS item, COUNT(*) AS n FROM fhir_patient
UNION ALL
SELECT 'person' AS input, 'no_birth_date' AS item, COUNT(*) AS n FROM imnm_person
WHERE birth_date IS NULL;

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
