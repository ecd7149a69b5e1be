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
