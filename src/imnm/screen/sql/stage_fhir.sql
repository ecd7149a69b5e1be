-- imnm screen, staging from FHIR R4 bulk NDJSON (DuckDB dialect; transpiled to Spark SQL).
-- Reads the raw resource views fhir_patient, fhir_condition, fhir_observation,
-- fhir_medicationrequest and fhir_medicationadministration (one row per NDJSON line, schema
-- in sources.py) and writes the same canonical views as the OMOP staging.
-- Conditions: refuted and entered-in-error are left out; resolved, inactive and remission
-- are kept but not active. Observations: entered-in-error and cancelled are left out. Dates:
-- the first ten characters of a dateTime.

CREATE OR REPLACE TEMPORARY VIEW imnm_person AS
SELECT
    p.id AS person_id,
    TRY_CAST(SUBSTR(p.birthDate, 1, 10) AS DATE) AS birth_date,
    CASE WHEN p.gender IN ('male', 'female') THEN p.gender ELSE 'unknown' END AS sex
FROM fhir_patient AS p
WHERE p.id IS NOT NULL;

CREATE OR REPLACE TEMPORARY VIEW imnm_condition AS
WITH codings AS (
    SELECT
        REPLACE(c.subject.reference, 'Patient/', '') AS person_id,
        cd.system AS uri,
        cd.code AS code,
        TRY_CAST(SUBSTR(COALESCE(c.onsetDateTime, c.recordedDate), 1, 10) AS DATE) AS start_date,
        COALESCE(c.clinicalStatus.coding[1].code, 'active')
            NOT IN ('resolved', 'inactive', 'remission') AS active
    FROM fhir_condition AS c
    CROSS JOIN UNNEST(c.code.coding) AS t(cd)
    WHERE COALESCE(c.verificationStatus.coding[1].code, 'confirmed')
        NOT IN ('refuted', 'entered-in-error')
)
SELECT DISTINCT x.person_id, s.system, x.code, x.start_date, x.active
FROM codings AS x
JOIN imnm_fhir_system AS s ON s.uri = x.uri;

CREATE OR REPLACE TEMPORARY VIEW imnm_measurement AS
WITH codings AS (
    SELECT
        REPLACE(o.subject.reference, 'Patient/', '') AS person_id,
        cd.system AS uri,
        cd.code AS code,
        o.valueQuantity.value AS value,
        COALESCE(o.valueQuantity.unit, o.valueQuantity.code) AS unit,
        o.referenceRange[1].high.value AS range_high,
        LOWER(COALESCE(o.valueCodeableConcept.text, o.valueCodeableConcept.coding[1].display))
            AS answer,
        TRY_CAST(SUBSTR(o.effectiveDateTime, 1, 10) AS DATE) AS date
    FROM fhir_observation AS o
    CROSS JOIN UNNEST(o.code.coding) AS t(cd)
    WHERE COALESCE(o.status, 'final') NOT IN ('entered-in-error', 'cancelled')
)
SELECT
    x.person_id, s.system, x.code, x.value, x.unit, x.range_high,
    CASE
        WHEN x.answer IN ('positive', 'detected', 'present') THEN 'positive'
        WHEN x.answer IN ('negative', 'not detected', 'absent') THEN 'negative'
        ELSE NULL
    END AS result,
    x.date
FROM codings AS x
JOIN imnm_fhir_system AS s ON s.uri = x.uri;

CREATE OR REPLACE TEMPORARY VIEW imnm_drug AS
WITH requests AS (
    SELECT
        REPLACE(r.subject.reference, 'Patient/', '') AS person_id,
        cd.system AS uri,
        cd.code AS code,
        TRY_CAST(SUBSTR(COALESCE(r.dispenseRequest.validityPeriod.start, r.authoredOn), 1, 10)
            AS DATE) AS start_date,
        TRY_CAST(SUBSTR(r.dispenseRequest.validityPeriod."end", 1, 10) AS DATE) AS end_date
    FROM fhir_medicationrequest AS r
    CROSS JOIN UNNEST(r.medicationCodeableConcept.coding) AS t(cd)
    WHERE COALESCE(r.status, 'active') NOT IN ('entered-in-error', 'cancelled', 'draft')
),
administrations AS (
    SELECT
        REPLACE(a.subject.reference, 'Patient/', '') AS person_id,
        cd.system AS uri,
        cd.code AS code,
        TRY_CAST(SUBSTR(COALESCE(a.effectivePeriod.start, a.effectiveDateTime), 1, 10)
            AS DATE) AS start_date,
        TRY_CAST(SUBSTR(COALESCE(a.effectivePeriod."end", a.effectiveDateTime), 1, 10)
            AS DATE) AS end_date
    FROM fhir_medicationadministration AS a
    CROSS JOIN UNNEST(a.medicationCodeableConcept.coding) AS t(cd)
    WHERE COALESCE(a.status, 'completed') NOT IN ('entered-in-error', 'not-done')
),
given AS (
    SELECT * FROM requests
    UNION ALL
    SELECT * FROM administrations
)
SELECT x.person_id, s.system, x.code, x.start_date, x.end_date
FROM given AS x
JOIN imnm_fhir_system AS s ON s.uri = x.uri;
